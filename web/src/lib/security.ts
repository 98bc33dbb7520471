/** Sign-in security: what the Security page asks the API. */
import type { PasskeyList, PatList, SecondFactorStatus } from "@/api/types";
import { api } from "./api";

export const SECURITY_KEY = ["auth", "security"] as const;
export const securityApi = {
  status: () => api<SecondFactorStatus>("/auth/second-factor"),
  passkeys: async () => (await api<PasskeyList>("/auth/passkeys")).items,
  tokens: async () => (await api<PatList>("/auth/tokens")).items,
};

/** A text file of the recovery codes, for the person to keep. */
export function recoveryCodesFile(codes: string[], account: string): Blob {
  const text = [`Atrium recovery codes for ${account}`, "Each code works once.", "", ...codes, ""].join("\n");
  return new Blob([text], { type: "text/plain" });
}
