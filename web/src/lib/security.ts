/** Sign-in security: the API of the Security page, the sign-in page and the admin security page. */
import { api } from "./api";

export interface SecondFactorStatus {
  totp: boolean;
  recovery_codes_left: number;
  passkeys: number;
  required: boolean;
}
export interface TotpEnrolment {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}
export interface PasskeyInfo {
  id: string;
  name: string;
  created_at: string;
  last_used_at?: string | null;
  backed_up: boolean;
}
export type PatScope = "read" | "write" | "admin";
export interface PatInfo {
  id: string;
  name: string;
  prefix: string;
  scopes: PatScope[];
  apps?: string[] | null;
  created_at: string;
  expires_at: string;
  revoked_at?: string | null;
  last_used_at?: string | null;
  last_used_ip?: string | null;
}
export interface Ceremony {
  ceremony_id: string;
  options: Record<string, unknown>;
}
export interface SsoButton {
  id: string;
  label: string;
}
export interface SsoProvider {
  id: string;
  label: string;
  issuer: string;
  client_id: string;
  scopes: string;
  link_by_email: boolean;
  create_users: boolean;
  groups_claim?: string | null;
  group_map: Record<string, string>;
  enabled: boolean;
  client_secret_set: boolean;
  redirect_uri: string;
}
export interface ExternalAuthSettings {
  enabled: boolean;
  token_url: string;
  client_id: string;
  scope: string;
  create_users: boolean;
  timeout_s: number;
  circuit_cool_off_s: number;
  refresh_buffer_s?: number | null;
  client_secret_set: boolean;
  circuit_open: boolean;
}
export type SecondFactorPolicy = "optional" | "admins" | "everyone";

/** What login's 401 carries when the password was right and a second factor is needed. */
export interface SecondStepChallenge {
  reason: "second_factor_required";
  step_token: string;
  methods: ("totp" | "recovery" | "passkey")[];
  expires_in: number;
  passkey_options?: Record<string, unknown>;
}

export function isSecondStep(details: unknown): details is SecondStepChallenge {
  return !!details && typeof details === "object" && (details as { reason?: string }).reason === "second_factor_required";
}

export const SECURITY_KEY = ["auth", "security"] as const;
export const securityApi = {
  status: () => api<SecondFactorStatus>("/auth/second-factor"),
  passkeys: async () => (await api<{ items: PasskeyInfo[] }>("/auth/passkeys")).items,
  tokens: async () => (await api<{ items: PatInfo[] }>("/auth/tokens")).items,
  ssoButtons: async () => (await api<{ items: SsoButton[] }>("/auth/sso/buttons", { noRefresh: true })).items,
};

/** A text file of the recovery codes, for the person to keep. */
export function recoveryCodesFile(codes: string[], account: string): Blob {
  const text = [`Atrium recovery codes for ${account}`, "Each code works once.", "", ...codes, ""].join("\n");
  return new Blob([text], { type: "text/plain" });
}
