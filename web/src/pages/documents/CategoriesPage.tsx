import * as React from "react";
import { Link } from "react-router-dom";
import { useTranslation } from "@/lib/i18n";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { FolderTree, Pencil, Share2, Trash2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { EmptyState, ErrorState } from "@/components/ui/states";
import { FormError } from "@/components/ui/form-error";
import { Spinner } from "@/components/ui/spinner";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { useToast } from "@/components/ui/toast";
import { PageHeader } from "@/components/layout/PageHeader";
import { CategoryShareDialog } from "@/components/documents/SharePanel";
import { api } from "@/lib/api";
import type { Category } from "@/api/types";
import { useCategories } from "@/lib/documents/queries";

export function CategoriesPage() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const toast = useToast();
  const categories = useCategories();
  const [name, setName] = React.useState("");
  const [editing, setEditing] = React.useState<{ id: string; name: string } | null>(null);
  const [deleting, setDeleting] = React.useState<Category | null>(null);
  const [sharing, setSharing] = React.useState<Category | null>(null);
  const done = () => {
    void qc.invalidateQueries({ queryKey: ["categories"] });
    void qc.invalidateQueries({ queryKey: ["documents"] });
  };
  const create = useMutation({
    mutationFn: () => api("/categories", { method: "POST", body: { name: name.trim() } }),
    onSuccess: () => {
      setName("");
      toast({ title: t("categories.created"), variant: "success" });
      done();
    },
  });
  const rename = useMutation({
    mutationFn: (c: { id: string; name: string }) => api(`/categories/${c.id}`, { method: "PATCH", body: { name: c.name.trim() } }),
    onSuccess: () => {
      setEditing(null);
      done();
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => api(`/categories/${id}`, { method: "DELETE" }),
    onSuccess: () => {
      toast({ title: t("categories.deleted"), variant: "success" });
      done();
    },
    onError: (e) => toast({ title: t("categories.delete_failed"), description: (e as Error).message, variant: "destructive" }),
  });
  return (
    <div className="grid grid-cols-1 gap-6">
      <PageHeader title={t("categories.title")} description={t("categories.subtitle")} />
      <form
        className="flex flex-col gap-2 sm:flex-row sm:items-end"
        onSubmit={(e) => {
          e.preventDefault();
          if (name.trim()) create.mutate();
        }}
      >
        <div className="grid grid-cols-1 flex-1 gap-1.5">
          <Label htmlFor="new-category">{t("categories.new")}</Label>
          <Input id="new-category" value={name} maxLength={80} onChange={(e) => setName(e.target.value)} placeholder={t("categories.placeholder")} />
        </div>
        <Button type="submit" disabled={!name.trim() || create.isPending}>{t("categories.create")}</Button>
      </form>
      <FormError error={create.error} />
      {categories.isLoading ? (
        <Spinner />
      ) : categories.isError ? (
        <ErrorState error={categories.error} onRetry={() => void categories.refetch()} />
      ) : (categories.data ?? []).length === 0 ? (
        <EmptyState icon={<FolderTree className="h-8 w-8" />} title={t("categories.empty")} description={t("categories.empty_hint")} />
      ) : (
        <Card>
          <Table>
            <TableHeader>
              <TableRow>
                <TableHead>{t("categories.name")}</TableHead>
                <TableHead>{t("categories.documents")}</TableHead>
                <TableHead className="text-right"><span className="sr-only">{t("common.actions")}</span></TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {categories.data!.map((c) => (
                <TableRow key={c.id}>
                  <TableCell>
                    {editing?.id === c.id ? (
                      <form
                        className="flex flex-wrap gap-2"
                        onSubmit={(e) => {
                          e.preventDefault();
                          rename.mutate(editing);
                        }}
                      >
                        <Label htmlFor={`rename-${c.id}`} className="sr-only">{t("categories.name")}</Label>
                        <Input id={`rename-${c.id}`} autoFocus className="max-w-xs" value={editing.name} maxLength={80} onChange={(e) => setEditing({ id: c.id, name: e.target.value })} />
                        <Button type="submit" size="sm" disabled={!editing.name.trim()}>{t("common.save")}</Button>
                        <Button type="button" size="sm" variant="ghost" onClick={() => setEditing(null)}>{t("common.cancel")}</Button>
                        {rename.error && <p role="alert" className="w-full text-sm text-destructive">{(rename.error as Error).message}</p>}
                      </form>
                    ) : (
                      <Link to={`/documents?category_any=${c.id}`} className="font-medium hover:underline">{c.name}</Link>
                    )}
                  </TableCell>
                  <TableCell className="tabular-nums">{c.document_count ?? 0}</TableCell>
                  <TableCell className="text-right">
                    <Button size="icon" variant="ghost" aria-label={t("categories.share", { name: c.name })} onClick={() => setSharing(c)}><Share2 /></Button>
                    <Button size="icon" variant="ghost" aria-label={t("categories.rename", { name: c.name })} onClick={() => setEditing({ id: c.id, name: c.name })}><Pencil /></Button>
                    <Button size="icon" variant="ghost" aria-label={t("categories.delete", { name: c.name })} onClick={() => setDeleting(c)}><Trash2 /></Button>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </Card>
      )}
      <CategoryShareDialog category={sharing} onOpenChange={(o) => !o && setSharing(null)} />
      <ConfirmDialog
        open={!!deleting}
        onOpenChange={(o) => !o && setDeleting(null)}
        title={t("categories.delete_title", { name: deleting?.name ?? "" })}
        description={t("categories.delete_description", { count: deleting?.document_count ?? 0 })}
        confirmLabel={t("common.delete")}
        onConfirm={() => deleting && remove.mutate(deleting.id)}
      />
    </div>
  );
}
