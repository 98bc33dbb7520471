import * as React from "react";
import { Download } from "lucide-react";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { ErrorState } from "@/components/ui/states";
import { FormError } from "@/components/ui/form-error";
import { Spinner } from "@/components/ui/spinner";
import { useToast } from "@/components/ui/toast";
import { Avatar } from "@/components/layout/Avatar";
import { PageHeader } from "@/components/layout/PageHeader";
import { api, ApiError, buildUrl } from "@/lib/api";
import { useMe } from "@/lib/auth";
import { useTheme, type Theme } from "@/lib/theme";
import type { Profile, ProfileUpdate } from "@/api/types";
import { formatDate } from "@/lib/format";

const AVATAR_MAX = 2 * 1024 * 1024;
const AVATAR_TYPES = ["image/png", "image/jpeg", "image/webp"];
const TEXT_FIELDS = ["display_name", "full_name", "phone", "job_title"] as const;

function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  try {
    return intl.supportedValuesOf ? ["UTC", ...intl.supportedValuesOf("timeZone").filter((z) => z !== "UTC")] : ["UTC"];
  } catch {
    return ["UTC"];
  }
}

export function ProfilePage() {
  const { t, i18n } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const me = useMe();
  const { setTheme } = useTheme();
  const profile = useQuery({ queryKey: ["profile"], queryFn: () => api<Profile>("/profile") });
  const [form, setForm] = React.useState<Partial<Profile>>({});
  const [preview, setPreview] = React.useState<string | null>(null);
  const [avatarFile, setAvatarFile] = React.useState<File | null>(null);
  const [avatarError, setAvatarError] = React.useState<string | null>(null);
  const zones = React.useMemo(timeZones, []);
  React.useEffect(() => {
    if (profile.data) setForm(profile.data);
  }, [profile.data]);
  React.useEffect(() => () => {
    if (preview) URL.revokeObjectURL(preview);
  }, [preview]);

  const save = useMutation({
    mutationFn: () => {
      const body: ProfileUpdate = {};
      for (const k of TEXT_FIELDS) if ((form[k] ?? null) !== (profile.data?.[k] ?? null)) body[k] = form[k] || null;
      if (form.locale && form.locale !== profile.data?.locale) body.locale = form.locale;
      if (form.time_zone && form.time_zone !== profile.data?.time_zone) body.time_zone = form.time_zone;
      if (form.theme && form.theme !== profile.data?.theme) body.theme = form.theme;
      return api<Profile>("/profile", { method: "PATCH", body });
    },
    onSuccess: (p) => {
      qc.setQueryData(["profile"], p);
      if (p.locale && p.locale !== i18n.language) void i18n.changeLanguage(p.locale);
      if (p.theme) setTheme(p.theme);
      toast({ title: t("profile.saved"), variant: "success" });
    },
  });
  const uploadAvatar = useMutation({
    mutationFn: (file: File) => api<Profile>("/profile/avatar", { method: "PUT", body: file }),
    onSuccess: (p) => {
      qc.setQueryData(["profile"], p);
      setAvatarFile(null);
      setPreview(null);
      toast({ title: t("profile.avatar_saved"), variant: "success" });
    },
  });
  const deleteAvatar = useMutation({
    mutationFn: () => api<Profile>("/profile/avatar", { method: "DELETE" }),
    onSuccess: (p) => qc.setQueryData(["profile"], p),
  });

  // Wait until the form holds the profile, so the fields never flash empty.
  if (profile.isLoading || (profile.data && !form.user_id)) return <Spinner />;
  if (profile.isError) return <ErrorState error={profile.error} onRetry={() => void profile.refetch()} />;
  const p = profile.data!;
  const fieldErrors = save.error instanceof ApiError ? save.error.fieldErrors : [];
  const errorFor = (k: string) => fieldErrors.find((e) => e.field === k || e.field?.endsWith(`.${k}`))?.message;
  const avatarSrc = preview ?? (p.has_avatar ? `${buildUrl("/profile/avatar")}?v=${encodeURIComponent(p.avatar_updated_at ?? "")}` : null);
  const name = form.display_name || form.full_name || me.data?.email || "";

  const onPick = (file: File | undefined) => {
    setAvatarError(null);
    if (!file) return;
    if (!AVATAR_TYPES.includes(file.type)) return setAvatarError(t("profile.avatar_type"));
    if (file.size > AVATAR_MAX) return setAvatarError(t("profile.avatar_size"));
    setAvatarFile(file);
    setPreview(URL.createObjectURL(file));
  };

  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("profile.title")} description={t("profile.subtitle")} />
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-[20rem_minmax(0,1fr)]">
        <Card>
          <CardHeader>
            <CardTitle>{t("profile.avatar")}</CardTitle>
            <CardDescription>{t("profile.avatar_hint")}</CardDescription>
          </CardHeader>
          <CardContent className="grid grid-cols-1 justify-items-center gap-3">
            <Avatar name={name} src={avatarSrc} size={112} />
            {preview && <p className="text-xs text-muted-foreground">{t("profile.preview")}</p>}
            <input id="avatar" type="file" accept="image/png,image/jpeg,image/webp" className="sr-only" onChange={(e) => onPick(e.target.files?.[0])} />
            <div className="flex flex-wrap justify-center gap-2">
              <Button variant="outline" size="sm" asChild>
                <label htmlFor="avatar" tabIndex={0} onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && document.getElementById("avatar")?.click()}>
                  {t("profile.choose_image")}
                </label>
              </Button>
              {avatarFile && (
                <Button size="sm" onClick={() => uploadAvatar.mutate(avatarFile)} disabled={uploadAvatar.isPending}>{t("profile.upload")}</Button>
              )}
              {p.has_avatar && !avatarFile && (
                <Button size="sm" variant="ghost" onClick={() => deleteAvatar.mutate()}>{t("profile.remove_avatar")}</Button>
              )}
            </div>
            {avatarError && <p role="alert" className="text-sm text-destructive">{avatarError}</p>}
            <FormError error={uploadAvatar.error} />
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardTitle>{t("profile.details")}</CardTitle>
            <CardDescription>{me.data?.email} · {t("profile.updated", { when: formatDate(p.updated_at, i18n.language) })}</CardDescription>
          </CardHeader>
          <CardContent>
            <form
              className="grid grid-cols-1 gap-4 sm:grid-cols-2"
              onSubmit={(e) => {
                e.preventDefault();
                save.mutate();
              }}
            >
              {TEXT_FIELDS.map((k) => (
                <div key={k} className="grid grid-cols-1 gap-1.5">
                  <Label htmlFor={k}>{t(`profile.${k}`)}</Label>
                  <Input
                    id={k}
                    type={k === "phone" ? "tel" : "text"}
                    autoComplete={k === "full_name" ? "name" : k === "phone" ? "tel" : k === "job_title" ? "organization-title" : "nickname"}
                    placeholder={k === "phone" ? "+44 20 7946 0958" : undefined}
                    value={(form[k] as string) ?? ""}
                    aria-invalid={!!errorFor(k)}
                    aria-describedby={errorFor(k) ? `${k}-error` : undefined}
                    onChange={(e) => setForm({ ...form, [k]: e.target.value })}
                  />
                  {errorFor(k) && <p id={`${k}-error`} className="text-sm text-destructive">{errorFor(k)}</p>}
                </div>
              ))}
              <div className="grid grid-cols-1 gap-1.5">
                <Label htmlFor="locale">{t("profile.locale")}</Label>
                <NativeSelect id="locale" value={form.locale ?? "en"} onChange={(e) => setForm({ ...form, locale: e.target.value as "en" | "ru" })}>
                  <option value="en">English</option>
                  <option value="ru">Русский</option>
                </NativeSelect>
              </div>
              <div className="grid grid-cols-1 gap-1.5">
                <Label htmlFor="time_zone">{t("profile.time_zone")}</Label>
                <NativeSelect id="time_zone" value={form.time_zone ?? "UTC"} onChange={(e) => setForm({ ...form, time_zone: e.target.value })}>
                  {(zones.includes(form.time_zone ?? "UTC") ? zones : [form.time_zone!, ...zones]).map((z) => <option key={z} value={z}>{z}</option>)}
                </NativeSelect>
                {errorFor("time_zone") && <p className="text-sm text-destructive">{errorFor("time_zone")}</p>}
              </div>
              <div className="grid grid-cols-1 gap-1.5">
                <Label htmlFor="theme">{t("profile.theme")}</Label>
                <NativeSelect id="theme" value={form.theme ?? "system"} onChange={(e) => setForm({ ...form, theme: e.target.value as Theme })}>
                  <option value="light">{t("theme.light")}</option>
                  <option value="dark">{t("theme.dark")}</option>
                  <option value="system">{t("theme.system")}</option>
                </NativeSelect>
              </div>
              <div className="sm:col-span-2">
                {fieldErrors.length === 0 && <FormError error={save.error} />}
              </div>
              <div className="flex gap-2 sm:col-span-2">
                <Button type="submit" disabled={save.isPending}>{t("common.save")}</Button>
                <Button type="button" variant="ghost" onClick={() => setForm(p)}>{t("common.reset")}</Button>
              </div>
            </form>
          </CardContent>
        </Card>
      </div>
      <Card>
        <CardHeader>
          <CardTitle>{t("profile.your_data")}</CardTitle>
          <CardDescription>{t("profile.export_hint")}</CardDescription>
        </CardHeader>
        <CardContent>
          <Button asChild variant="outline">
            <a href={buildUrl("/documents/export")} download>
              <Download /> {t("profile.export")}
            </a>
          </Button>
        </CardContent>
      </Card>
    </div>
  );
}
