/**
 * The one way the app talks to the gateway: `/api/v1` with the session cookies.
 * Unsafe requests carry the CSRF double-submit header; a 401 triggers one silent refresh
 * (shared by concurrent callers) and a retry; a refused refresh means the session is gone.
 */
import type { ErrorEnvelope } from "@/api/types";

export const API_BASE = "/api/v1";
const CSRF_COOKIES = ["atrium_csrf", "__Host-atrium_csrf"];
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export interface ErrorDetail {
  field?: string;
  message?: string;
  type?: string;
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: unknown = null,
    public requestId = "",
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** Field-level messages from a 422 (`details: [{field, message}]`) or a rule list. */
  get fieldErrors(): ErrorDetail[] {
    if (Array.isArray(this.details)) return this.details as ErrorDetail[];
    if (this.details && typeof this.details === "object") {
      const d = this.details as Record<string, unknown>;
      for (const key of ["errors", "rules", "failed_rules", "violations"]) {
        if (Array.isArray(d[key])) {
          return (d[key] as unknown[]).map((x) => (typeof x === "string" ? { message: x } : (x as ErrorDetail)));
        }
      }
    }
    return [];
  }
}

export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(";")) {
    const [k, ...rest] = part.trim().split("=");
    if (k === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export function csrfToken(): string | null {
  for (const name of CSRF_COOKIES) {
    const v = readCookie(name);
    if (v) return v;
  }
  return null;
}

type SessionListener = (reason: "revoked" | "expired") => void;
const sessionListeners = new Set<SessionListener>();
export function onSessionLost(fn: SessionListener): () => void {
  sessionListeners.add(fn);
  return () => sessionListeners.delete(fn);
}

let refreshing: Promise<boolean> | null = null;

/** One refresh at a time: two tabs' worth of 401s share the same rotation. */
export function refreshSession(): Promise<boolean> {
  if (!refreshing) {
    refreshing = fetch(`${API_BASE}/auth/refresh`, {
      method: "POST",
      credentials: "same-origin",
      headers: withCsrf({}, "POST"),
    })
      .then((r) => r.ok)
      .catch(() => false)
      .finally(() => {
        setTimeout(() => (refreshing = null), 0);
      });
  }
  return refreshing;
}

function withCsrf(headers: Record<string, string>, method: string): Record<string, string> {
  if (!SAFE.has(method)) {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  return headers;
}

/** A failed answer's body as an ApiError: the API's error envelope, or (a proxy's page, no body) its status. */
export function envelopeError(status: number, body: unknown, fallback: string, requestId = ""): ApiError {
  const e = (body as Partial<ErrorEnvelope> | null)?.error;
  return new ApiError(status, e?.code ?? `http_${status}`, e?.message ?? fallback, e?.details ?? null, e?.request_id || requestId);
}

export async function toApiError(res: Response): Promise<ApiError> {
  const body: unknown = await res.json().catch(() => null); // not JSON: the status text says it
  return envelopeError(res.status, body, res.statusText || "Request failed", res.headers.get("x-request-id") ?? "");
}

/** Query parameters: a list repeats the key (`status=a&status=b`); empty values are left out. */
export type Query = Record<string, string | number | boolean | readonly string[] | null | undefined>;

export interface RequestOptions {
  method?: string;
  body?: unknown;
  query?: Query;
  /** Don't try a refresh on 401 (the auth endpoints themselves). */
  noRefresh?: boolean;
  raw?: boolean;
  signal?: AbortSignal;
}

export function buildUrl(path: string, query?: Query): string {
  const url = path.startsWith("/api/") ? path : `${API_BASE}${path.startsWith("/") ? "" : "/"}${path}`;
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    if (typeof v === "object") v.forEach((item) => params.append(k, item)); // a list (null was skipped)
    else params.append(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${url}?${qs}` : url;
}

export async function apiFetch(path: string, opts: RequestOptions = {}): Promise<Response> {
  const method = (opts.method ?? "GET").toUpperCase();
  // FormData and Blob (e.g. an image) go as they are; everything else as JSON.
  const isForm = (typeof FormData !== "undefined" && opts.body instanceof FormData) || (typeof Blob !== "undefined" && opts.body instanceof Blob);
  const send = () => {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (opts.body !== undefined && !isForm) headers["Content-Type"] = "application/json";
    if (typeof Blob !== "undefined" && opts.body instanceof Blob && opts.body.type) headers["Content-Type"] = opts.body.type;
    return fetch(buildUrl(path, opts.query), {
      method,
      credentials: "same-origin",
      headers: withCsrf(headers, method),
      body: opts.body === undefined ? undefined : isForm ? (opts.body as FormData | Blob) : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  };
  let res = await send();
  if (res.status === 401 && !opts.noRefresh) {
    if (await refreshSession()) {
      res = await send();
    }
    if (res.status === 401) {
      const err = await toApiError(res.clone());
      const why = (err.details as { reason?: string } | null)?.reason ?? "";
      const reason = ["revoked", "inactive", "reused"].includes(why) || /revok|ended|deactiv|reuse/i.test(err.message) ? "revoked" : "expired";
      sessionListeners.forEach((fn) => fn(reason));
    }
  }
  return res;
}

export async function api<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await apiFetch(path, opts);
  if (!res.ok) throw await toApiError(res);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get("content-type") ?? "";
  if (type.includes("application/json")) return (await res.json()) as T;
  return (await res.text()) as unknown as T;
}
