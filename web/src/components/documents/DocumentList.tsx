import type * as React from "react";
import { Link } from "react-router-dom";
import { Checkbox } from "@/components/ui/checkbox";
import { Progress } from "@/components/ui/progress";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import type { DocumentSummary } from "@/api/types";
import { useLiveProgress } from "@/lib/documents/live";
import { isActive, processingPercent } from "@/lib/documents/progress";
import { useTranslation } from "@/lib/i18n";
import { useMediaQuery } from "@/lib/useMediaQuery";
import { formatAmount, formatBytes, formatDate } from "@/lib/format";
import { StatusBadge } from "./StatusBadge";

interface ListProps {
  items: DocumentSummary[];
  selected: Set<string>;
  onToggle: (id: string) => void;
  onSelectAll: (all: boolean) => void;
}

interface ItemProps {
  doc: DocumentSummary;
  selected: boolean;
  onToggle: () => void;
}

/** A page of documents: a table where there is room for its columns, a list of cards on a phone. */
export function DocumentList({ items, selected, onToggle, onSelectAll }: ListProps) {
  const { t } = useTranslation();
  const narrow = useMediaQuery("(max-width: 639px)");
  const all = items.length > 0 && items.every((d) => selected.has(d.id));
  const some = items.some((d) => selected.has(d.id));
  const selectAll = <SelectAll checked={all ? true : some ? "indeterminate" : false} onChange={onSelectAll} />;
  const item = (d: DocumentSummary): ItemProps => ({ doc: d, selected: selected.has(d.id), onToggle: () => onToggle(d.id) });
  if (narrow) {
    return (
      <div>
        <div className="flex items-center gap-3 border-b px-4 py-2">
          {selectAll}
          <span className="text-sm text-muted-foreground" aria-hidden>
            {t("bulk.select_all")}
          </span>
        </div>
        <ul className="divide-y" data-testid="document-cards">
          {items.map((d) => (
            <DocumentCard key={d.id} {...item(d)} />
          ))}
        </ul>
      </div>
    );
  }
  return <DocumentTable selectAll={selectAll} items={items} item={item} />;
}

function SelectAll({ checked, onChange }: { checked: boolean | "indeterminate"; onChange: (all: boolean) => void }) {
  const { t } = useTranslation();
  return <Checkbox aria-label={t("bulk.select_all")} checked={checked} onCheckedChange={onChange} />;
}

function DocumentTable({ selectAll, items, item }: { selectAll: React.ReactNode; items: DocumentSummary[]; item: (d: DocumentSummary) => ItemProps }) {
  const { t } = useTranslation();
  return (
    <Table data-testid="documents-table">
      <TableHeader>
        <TableRow>
          <TableHead className="w-10">{selectAll}</TableHead>
          <TableHead>{t("documents.col_document")}</TableHead>
          <TableHead>{t("documents.col_status")}</TableHead>
          <TableHead className="hidden md:table-cell">{t("documents.col_type")}</TableHead>
          <TableHead className="hidden text-right xl:table-cell">{t("documents.col_amount")}</TableHead>
          <TableHead className="hidden lg:table-cell">{t("documents.col_categories")}</TableHead>
          <TableHead className="hidden sm:table-cell">{t("documents.col_uploaded")}</TableHead>
        </TableRow>
      </TableHeader>
      <TableBody>
        {items.map((d) => (
          <DocumentRow key={d.id} {...item(d)} />
        ))}
      </TableBody>
    </Table>
  );
}

/** The status to show: the live one while the server still says the document is being worked on. */
function useShownStatus(doc: DocumentSummary) {
  const live = useLiveProgress()[doc.id];
  return { status: isActive(doc.status) && live?.status ? live.status : doc.status, live };
}

function Title({ doc }: { doc: DocumentSummary }) {
  return (
    <Link to={`/documents/${doc.id}`} className="block truncate font-medium hover:underline">
      {doc.title || doc.filename}
    </Link>
  );
}

function FileFacts({ doc }: { doc: DocumentSummary }) {
  const { t, i18n } = useTranslation();
  return (
    <span className="block truncate text-xs text-muted-foreground">
      {doc.title ? `${doc.filename} · ` : ""}
      {formatBytes(doc.size, i18n.language)}
      {doc.page_count ? ` · ${t("documents.pages", { count: doc.page_count })}` : ""}
    </span>
  );
}

function Snippet({ doc }: { doc: DocumentSummary }) {
  if (!doc.snippet) return null;
  // The server escapes the text and adds only <mark>; any other tag is dropped as well.
  return (
    <span
      className="mt-1 block text-xs text-muted-foreground [&_mark]:rounded [&_mark]:bg-warning/30 [&_mark]:text-foreground"
      dangerouslySetInnerHTML={{ __html: doc.snippet.replace(/<(?!\/?mark>)[^>]*>/g, "") }}
    />
  );
}

function Status({ doc }: { doc: DocumentSummary }) {
  const { t } = useTranslation();
  const { status, live } = useShownStatus(doc);
  return (
    <div className="grid grid-cols-1 justify-items-start gap-1">
      <StatusBadge status={status} />
      {isActive(status) && <Progress className="h-1 w-20" value={processingPercent(status, live)} aria-label={t("upload.progress_of", { name: doc.filename })} />}
    </div>
  );
}

function Categories({ doc }: { doc: DocumentSummary }) {
  return (
    <div className="flex flex-wrap gap-1">
      {(doc.categories ?? []).map((c) => (
        <span key={c.id} className="rounded bg-secondary px-1.5 py-0.5 text-xs">{c.name}</span>
      ))}
    </div>
  );
}

function DocumentRow({ doc, selected, onToggle }: ItemProps) {
  const { t, i18n } = useTranslation();
  const { status } = useShownStatus(doc);
  return (
    <TableRow data-state={selected ? "selected" : undefined} data-testid="document-row" data-status={status}>
      <TableCell>
        <Checkbox aria-label={t("bulk.select_row", { name: doc.filename })} checked={selected} onCheckedChange={onToggle} />
      </TableCell>
      <TableCell className="max-w-[14rem] sm:max-w-md">
        <Title doc={doc} />
        <FileFacts doc={doc} />
        <Snippet doc={doc} />
      </TableCell>
      <TableCell>
        <Status doc={doc} />
      </TableCell>
      <TableCell className="hidden md:table-cell">{doc.document_type ? t(`doctype.${doc.document_type}`, { defaultValue: doc.document_type }) : "—"}</TableCell>
      <TableCell className="hidden whitespace-nowrap text-right tabular-nums xl:table-cell" data-testid="document-amount">
        {formatAmount(doc.total_amount, doc.currency, i18n.language) || "—"}
      </TableCell>
      <TableCell className="hidden lg:table-cell">
        <Categories doc={doc} />
      </TableCell>
      <TableCell className="hidden whitespace-nowrap text-muted-foreground sm:table-cell">{formatDate(doc.uploaded_at, i18n.language)}</TableCell>
    </TableRow>
  );
}

/** One document on a phone: everything the table row says, stacked so nothing is cut off. */
function DocumentCard({ doc, selected, onToggle }: ItemProps) {
  const { t, i18n } = useTranslation();
  const { status } = useShownStatus(doc);
  const amount = formatAmount(doc.total_amount, doc.currency, i18n.language);
  const facts = [
    doc.document_type ? t(`doctype.${doc.document_type}`, { defaultValue: doc.document_type }) : "",
    amount,
    formatDate(doc.uploaded_at, i18n.language, false),
  ].filter(Boolean);
  return (
    <li className="flex gap-3 px-4 py-3 data-[state=selected]:bg-muted/50" data-state={selected ? "selected" : undefined} data-testid="document-card" data-status={status}>
      <Checkbox className="mt-1" aria-label={t("bulk.select_row", { name: doc.filename })} checked={selected} onCheckedChange={onToggle} />
      <div className="grid min-w-0 flex-1 grid-cols-1 gap-1.5">
        <div className="min-w-0">
          <Title doc={doc} />
          <FileFacts doc={doc} />
          <Snippet doc={doc} />
        </div>
        <Status doc={doc} />
        <p className="text-xs text-muted-foreground">{facts.join(" · ")}</p>
        <Categories doc={doc} />
      </div>
    </li>
  );
}
