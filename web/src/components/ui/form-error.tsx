import { ApiError } from "@/lib/api";

/** The server's message and, for a 422, each field's own complaint. */
export function FormError({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const fields = error instanceof ApiError ? error.fieldErrors.filter((f) => f.message) : [];
  return (
    <div role="alert" className="rounded-md border border-destructive/40 bg-destructive/10 px-3 py-2 text-sm text-destructive">
      <p>{message}</p>
      {fields.length > 0 && (
        <ul className="mt-1 list-disc pl-5">
          {fields.map((f, i) => (
            <li key={i}>{f.field ? `${f.field}: ${f.message}` : f.message}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
