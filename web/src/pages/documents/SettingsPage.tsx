import * as React from "react";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { Input, NativeSelect } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { ErrorState } from "@/components/ui/states";
import { FormError } from "@/components/ui/form-error";
import { Spinner } from "@/components/ui/spinner";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/PageHeader";
import {
  OCR_MODES,
  OCR_PROVIDERS,
  PROVIDERS,
  type DocumentsSettings,
  type DocumentsSettingsUpdate,
  type OcrMode,
  type OcrProviderName,
  type ProviderName,
  type ProviderTestResult,
} from "@/api/types";
import { api } from "@/lib/api";

type Editable = keyof DocumentsSettingsUpdate;
const SETTINGS_KEY = ["admin", "doc-settings"];
// What the server reports and never takes back.
const READ_ONLY = ["api_key_set", "api_key_last4", "ocr_api_key_set", "ocr_api_key_last4", "ocr_languages_installed", "ocr_engine"] as const;
type ReadOnly = (typeof READ_ONLY)[number];
const isReadOnly = (k: keyof DocumentsSettings): k is ReadOnly => (READ_ONLY as readonly string[]).includes(k);

/** The Documents app's runtime settings (admins): AI provider, uploads, quotas, retention. */
export function DocumentsSettingsPage() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const settings = useQuery({ queryKey: SETTINGS_KEY, queryFn: () => api<DocumentsSettings>("/apps/documents/settings") });
  const [form, setForm] = React.useState<DocumentsSettings | null>(null);
  const [apiKey, setApiKey] = React.useState("");
  const [ocrKey, setOcrKey] = React.useState("");
  React.useEffect(() => {
    if (settings.data) setForm(settings.data);
  }, [settings.data]);
  const save = useMutation({
    mutationFn: () => {
      // Only what changed: a PATCH of the whole form would overwrite a concurrent admin's other edits.
      const body: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(form!) as [keyof DocumentsSettings, unknown][]) {
        if (isReadOnly(k)) continue;
        if (JSON.stringify(v) !== JSON.stringify(settings.data![k])) body[k satisfies Editable] = v === "" && k.startsWith("quota") ? null : v;
      }
      if (apiKey) body.api_key = apiKey;
      if (ocrKey) body.ocr_api_key = ocrKey;
      return api<DocumentsSettings>("/apps/documents/settings", { method: "PATCH", body: body as DocumentsSettingsUpdate });
    },
    onSuccess: (d) => {
      qc.setQueryData(SETTINGS_KEY, d);
      setApiKey("");
      setOcrKey("");
      toast({ title: t("settings.saved"), variant: "success" });
    },
  });
  const clearOcrKey = useMutation({
    mutationFn: () => api<DocumentsSettings>("/apps/documents/settings", { method: "PATCH", body: { ocr_api_key: "" } satisfies DocumentsSettingsUpdate }),
    onSuccess: (d) => qc.setQueryData(SETTINGS_KEY, d),
  });
  const clearKey = useMutation({
    mutationFn: () => api<DocumentsSettings>("/apps/documents/settings", { method: "PATCH", body: { api_key: "" } satisfies DocumentsSettingsUpdate }),
    onSuccess: (d) => qc.setQueryData(SETTINGS_KEY, d),
  });
  const test = useMutation({
    mutationFn: () =>
      api<ProviderTestResult>("/apps/documents/settings/test", {
        method: "POST",
        body: { provider: form!.provider, model: form!.model || null, base_url: form!.base_url || null, ...(apiKey ? { api_key: apiKey } : {}) },
      }),
  });
  if (settings.isLoading || (!form && !settings.isError)) return <Spinner />;
  if (settings.isError) return <ErrorState error={settings.error} onRetry={() => void settings.refetch()} />;
  const f = form!;
  const set = (patch: Partial<DocumentsSettings>) => setForm({ ...f, ...patch });
  const num = (v: string) => (v === "" ? null : Number(v));
  const installed = f.ocr_languages_installed ?? [];
  const languages = f.ocr_languages ?? [];
  // Chosen languages first, in their order (Tesseract's first language leads), then the other installed ones.
  const languageChoices = [...languages, ...installed.filter((l) => !languages.includes(l))];
  const toggleLanguage = (lang: string, on: boolean) =>
    set({ ocr_languages: on ? [...languages, lang] : languages.filter((l) => l !== lang) });
  const vision = f.ocr_provider !== "tesseract";
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("settings.title")} description={t("settings.subtitle")} />
      <form className="grid grid-cols-1 gap-6" onSubmit={(e) => { e.preventDefault(); save.mutate(); }}>
        <Card>
          <CardHeader>
            <CardTitle>{t("settings.ai")}</CardTitle>
            <CardDescription>{t("settings.ai_hint")}</CardDescription>
          </CardHeader>
          <CardContent className="grid grid-cols-1 gap-4 sm:grid-cols-2">
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="provider">{t("settings.provider")}</Label>
              <NativeSelect id="provider" value={f.provider} onChange={(e) => set({ provider: e.target.value as ProviderName })}>
                {PROVIDERS.map((p) => <option key={p} value={p}>{t(`provider.${p}`)}</option>)}
              </NativeSelect>
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="model">{t("settings.model")}</Label>
              <Input id="model" value={f.model ?? ""} onChange={(e) => set({ model: e.target.value })} disabled={f.provider === "builtin"} />
            </div>
            <div className="grid grid-cols-1 gap-1.5 sm:col-span-2">
              <Label htmlFor="base_url">{t("settings.base_url")}</Label>
              <Input id="base_url" type="url" value={f.base_url ?? ""} placeholder="http://127.0.0.1:11434" onChange={(e) => set({ base_url: e.target.value })} disabled={f.provider === "builtin" || f.provider === "anthropic"} />
            </div>
            <div className="grid grid-cols-1 gap-1.5 sm:col-span-2">
              <Label htmlFor="api_key">{t("settings.api_key")}</Label>
              <div className="flex flex-col gap-2 sm:flex-row">
                <Input
                  id="api_key"
                  type="password"
                  autoComplete="off"
                  value={apiKey}
                  placeholder={f.api_key_set ? t("settings.key_set", { last4: f.api_key_last4 }) : t("settings.key_not_set")}
                  onChange={(e) => setApiKey(e.target.value)}
                  aria-describedby="api-key-hint"
                />
                {f.api_key_set && <Button type="button" variant="outline" onClick={() => clearKey.mutate()}>{t("settings.clear_key")}</Button>}
              </div>
              <p id="api-key-hint" className="text-xs text-muted-foreground">
                {f.api_key_set ? t("settings.key_set", { last4: f.api_key_last4 }) : t("settings.key_not_set")} · {t("settings.key_hint")}
              </p>
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="timeout">{t("settings.timeout")}</Label>
              <Input id="timeout" type="number" min={1} max={600} value={f.request_timeout_s} onChange={(e) => set({ request_timeout_s: Number(e.target.value) })} />
            </div>
            <div className="flex items-center gap-2 pt-6">
              <Checkbox id="ai_cats" checked={!!f.ai_may_create_categories} onCheckedChange={(v) => set({ ai_may_create_categories: v === true })} />
              <Label htmlFor="ai_cats" className="font-normal">{t("settings.ai_may_create_categories")}</Label>
            </div>
            <div className="grid grid-cols-1 gap-1.5 sm:col-span-2">
              <Label htmlFor="prompt">{t("settings.prompt")}</Label>
              <textarea id="prompt" className="min-h-20 rounded-md border border-input bg-background px-3 py-2 text-sm" maxLength={4000} value={f.prompt_instructions ?? ""} onChange={(e) => set({ prompt_instructions: e.target.value })} />
            </div>
            <div className="flex flex-wrap items-center gap-3 sm:col-span-2">
              <Button type="button" variant="outline" onClick={() => test.mutate()} disabled={test.isPending}>{test.isPending ? t("settings.testing") : t("settings.test")}</Button>
              {test.data && (
                <p role="status" className={test.data.ok ? "text-sm text-success" : "text-sm text-destructive"} data-testid="test-result">
                  {test.data.ok ? t("settings.test_ok", { model: test.data.model || test.data.provider, ms: Math.round(test.data.latency_ms ?? 0) }) : t("settings.test_failed", { message: test.data.message })}
                </p>
              )}
              {test.error && <p role="alert" className="text-sm text-destructive">{(test.error as Error).message}</p>}
            </div>
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardTitle>{t("settings.ocr")}</CardTitle>
            <CardDescription>{t("settings.ocr_hint")}</CardDescription>
          </CardHeader>
          <CardContent className="grid grid-cols-1 gap-4 sm:grid-cols-2">
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="ocr_mode">{t("settings.ocr_mode")}</Label>
              <NativeSelect id="ocr_mode" value={f.ocr_mode} onChange={(e) => set({ ocr_mode: e.target.value as OcrMode })}>
                {OCR_MODES.map((m) => <option key={m} value={m}>{t(`settings.ocr_mode_${m}`)}</option>)}
              </NativeSelect>
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="ocr_max_pages">{t("settings.ocr_max_pages")}</Label>
              <Input id="ocr_max_pages" type="number" min={1} max={2000} value={f.ocr_max_pages} onChange={(e) => set({ ocr_max_pages: Number(e.target.value) })} />
            </div>
            <fieldset className="grid grid-cols-1 gap-1.5 sm:col-span-2" disabled={f.ocr_mode === "off" || vision}>
              <legend className="mb-1.5 text-sm font-medium">{t("settings.ocr_languages")}</legend>
              <div className="flex flex-wrap gap-x-4 gap-y-2" data-testid="ocr-languages">
                {languageChoices.map((lang) => (
                  <div key={lang} className="flex items-center gap-2">
                    <Checkbox
                      id={`ocr-lang-${lang}`}
                      checked={languages.includes(lang)}
                      disabled={languages.length === 1 && languages.includes(lang)}
                      onCheckedChange={(v) => toggleLanguage(lang, v === true)}
                    />
                    <Label htmlFor={`ocr-lang-${lang}`} className="font-normal">{t(`settings.lang_${lang}`, { defaultValue: lang })} <span className="text-muted-foreground">({lang})</span></Label>
                  </div>
                ))}
              </div>
              <p className="text-xs text-muted-foreground">{t("settings.ocr_languages_hint", { engine: f.ocr_engine || "Tesseract" })}</p>
            </fieldset>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="ocr_provider">{t("settings.ocr_provider")}</Label>
              <NativeSelect id="ocr_provider" value={f.ocr_provider} onChange={(e) => set({ ocr_provider: e.target.value as OcrProviderName })}>
                {OCR_PROVIDERS.map((p) => <option key={p} value={p}>{t(`settings.ocr_provider_${p}`)}</option>)}
              </NativeSelect>
            </div>
            {vision && (
              <>
                <div className="grid grid-cols-1 gap-1.5">
                  <Label htmlFor="ocr_model">{t("settings.ocr_model")}</Label>
                  <Input id="ocr_model" value={f.ocr_model ?? ""} placeholder={t("settings.ocr_model_default")} onChange={(e) => set({ ocr_model: e.target.value })} />
                </div>
                <div className="grid grid-cols-1 gap-1.5 sm:col-span-2">
                  <Label htmlFor="ocr_base_url">{t("settings.ocr_base_url")}</Label>
                  <Input id="ocr_base_url" type="url" value={f.ocr_base_url ?? ""} placeholder="http://127.0.0.1:11434" onChange={(e) => set({ ocr_base_url: e.target.value })} disabled={f.ocr_provider === "anthropic"} />
                </div>
                <div className="grid grid-cols-1 gap-1.5 sm:col-span-2">
                  <Label htmlFor="ocr_api_key">{t("settings.ocr_api_key")}</Label>
                  <div className="flex flex-col gap-2 sm:flex-row">
                    <Input
                      id="ocr_api_key"
                      type="password"
                      autoComplete="off"
                      value={ocrKey}
                      placeholder={f.ocr_api_key_set ? t("settings.key_set", { last4: f.ocr_api_key_last4 }) : t("settings.key_not_set")}
                      onChange={(e) => setOcrKey(e.target.value)}
                    />
                    {f.ocr_api_key_set && <Button type="button" variant="outline" onClick={() => clearOcrKey.mutate()}>{t("settings.clear_key")}</Button>}
                  </div>
                  <p className="text-xs text-muted-foreground">{t("settings.ocr_vision_hint")}</p>
                </div>
              </>
            )}
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardTitle>{t("settings.uploads")}</CardTitle>
          </CardHeader>
          <CardContent className="grid grid-cols-1 gap-4 sm:grid-cols-2">
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="max_upload">{t("settings.max_upload")}</Label>
              <Input id="max_upload" type="number" min={1} max={2048} value={f.max_upload_mb} onChange={(e) => set({ max_upload_mb: Number(e.target.value) })} />
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="duplicates">{t("settings.duplicates")}</Label>
              <NativeSelect id="duplicates" value={f.duplicate_policy} onChange={(e) => set({ duplicate_policy: e.target.value as DocumentsSettings["duplicate_policy"] })}>
                <option value="mark">{t("settings.dup_mark")}</option>
                <option value="reject">{t("settings.dup_reject")}</option>
              </NativeSelect>
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="quota_docs">{t("settings.quota_docs")}</Label>
              <Input id="quota_docs" type="number" min={1} placeholder={t("settings.unlimited")} value={f.quota_documents_per_user ?? ""} onChange={(e) => set({ quota_documents_per_user: num(e.target.value) })} />
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="quota_mb">{t("settings.quota_mb")}</Label>
              <Input id="quota_mb" type="number" min={1} placeholder={t("settings.unlimited")} value={f.quota_storage_mb_per_user ?? ""} onChange={(e) => set({ quota_storage_mb_per_user: num(e.target.value) })} />
            </div>
            <div className="grid grid-cols-1 gap-1.5">
              <Label htmlFor="retention">{t("settings.retention")}</Label>
              <Input id="retention" type="number" min={1} max={3650} value={f.task_retention_days} onChange={(e) => set({ task_retention_days: Number(e.target.value) })} />
            </div>
          </CardContent>
        </Card>
        <FormError error={save.error} />
        <div><Button type="submit" disabled={save.isPending}>{t("common.save")}</Button></div>
      </form>
    </div>
  );
}
