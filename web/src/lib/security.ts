/** Sign-in security: the API of the Security page, the sign-in page and the admin security page. */
import type { PasskeyList, PatList, SecondFactorMethod, SecondFactorStatus, SsoButtons } from "@/api/types";
import { api } from "./api";

/** What login's 401 carries when the password was right and a second factor is needed. */
export interface SecondStepChallenge {
  reason: "second_factor_required";
  step_token: string;
  methods: SecondFactorMethod[];
  expires_in: number;
  passkey_options?: Record<string, unknown>;
}

export function isSecondStep(details: unknown): details is SecondStepChallenge {
  return !!details && typeof details === "object" && (details as { reason?: string }).reason === "second_factor_required";
}

export const SECURITY_KEY = ["auth", "security"] as const;
export const securityApi = {
  status: () => api<SecondFactorStatus>("/auth/second-factor"),
  passkeys: async () => (await api<PasskeyList>("/auth/passkeys")).items,
  tokens: async () => (await api<PatList>("/auth/tokens")).items,
  ssoButtons: async () => (await api<SsoButtons>("/auth/sso/buttons", { noRefresh: true })).items,
};

/** A text file of the recovery codes, for the person to keep. */
export function recoveryCodesFile(codes: string[], account: string): Blob {
  const text = [`Atrium recovery codes for ${account}`, "Each code works once.", "", ...codes, ""].join("\n");
  return new Blob([text], { type: "text/plain" });
}
