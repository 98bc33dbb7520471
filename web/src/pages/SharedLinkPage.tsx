/**
 * The page a share link opens (`/s/:token`), for people without an account: the document's name and size,
 * then its download or its page previews (the link's mode), after its password when it has one. Nothing else
 * of the owner's is shown; an expired, revoked or unknown link answers alike.
 */
import * as React from "react";
import { useParams } from "react-router-dom";
import { useMutation, useQuery } from "@tanstack/react-query";
import { Download } from "lucide-react";
import type { LinkInfo } from "@/api/types";
import { Brand } from "@/components/layout/Brand";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { FormError } from "@/components/ui/form-error";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { ErrorState } from "@/components/ui/states";
import { Spinner } from "@/components/ui/spinner";
import { api, buildUrl } from "@/lib/api";
import { formatBytes, formatDate } from "@/lib/format";
import { useTranslation } from "@/lib/i18n";

const PREVIEWS_SHOWN = 10;

export function SharedLinkPage() {
  const { token = "" } = useParams();
  const { t, i18n } = useTranslation();
  const [password, setPassword] = React.useState("");
  const info = useQuery({
    queryKey: ["share-link", token],
    queryFn: ({ signal }) => api<LinkInfo>(`/share-links/${encodeURIComponent(token)}`, { signal }),
    retry: false,
  });
  const unlock = useMutation({
    mutationFn: () => api<LinkInfo>(`/share-links/${encodeURIComponent(token)}`, { method: "POST", body: { password } }),
  });
  const opened = unlock.data ?? info.data;
  const ticket = opened?.ticket ?? undefined;
  const doc = opened?.document;

  let body: React.ReactNode;
  if (info.isLoading) body = <Spinner />;
  else if (info.isError || !opened) body = <ErrorState error={info.error} />;
  else if (!doc) {
    body = (
      <form
        className="grid grid-cols-1 gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          unlock.mutate();
        }}
      >
        <p className="text-sm text-muted-foreground">{t("shared_link.password_needed")}</p>
        <div className="grid grid-cols-1 gap-1">
          <Label htmlFor="link-password">{t("shared_link.password")}</Label>
          <Input id="link-password" type="password" required value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="off" />
        </div>
        <FormError error={unlock.error} />
        <Button type="submit" disabled={unlock.isPending}>{t("shared_link.open")}</Button>
      </form>
    );
  } else {
    const pages = Math.min(doc.preview_pages ?? 0, PREVIEWS_SHOWN);
    body = (
      <div className="grid grid-cols-1 gap-4">
        <p className="text-sm text-muted-foreground">
          {formatBytes(doc.size, i18n.language)}
          {doc.page_count ? ` · ${t("shared_link.pages", { count: doc.page_count })}` : ""}
          {" · "}
          {t("shared_link.expires", { date: formatDate(opened.expires_at, i18n.language) })}
        </p>
        {opened.mode === "download" ? (
          <Button asChild>
            <a href={buildUrl(`/share-links/${encodeURIComponent(token)}/file`, { ticket })} download={doc.filename}>
              <Download /> {t("shared_link.download")}
            </a>
          </Button>
        ) : pages === 0 ? (
          <p className="text-sm text-muted-foreground">{t("shared_link.no_previews")}</p>
        ) : (
          <ol className="grid grid-cols-1 gap-4" aria-label={t("shared_link.previews")}>
            {Array.from({ length: pages }, (_, i) => i + 1).map((n) => (
              <li key={n}>
                <img
                  className="w-full rounded-md border"
                  alt={t("shared_link.page", { number: n })}
                  src={buildUrl(`/share-links/${encodeURIComponent(token)}/pages/${n}/preview`, { ticket })}
                />
              </li>
            ))}
          </ol>
        )}
      </div>
    );
  }
  return (
    <main className="mx-auto grid min-h-screen w-full max-w-2xl content-start gap-6 p-6">
      <Brand />
      <Card>
        <CardHeader>
          <CardTitle className="break-all">{doc?.filename ?? t("shared_link.title")}</CardTitle>
          <CardDescription>{t("shared_link.hint")}</CardDescription>
        </CardHeader>
        <CardContent>{body}</CardContent>
      </Card>
    </main>
  );
}
