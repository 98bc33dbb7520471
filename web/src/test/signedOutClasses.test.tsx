import type * as React from "react";
import { cleanup } from "@testing-library/react";
import { twMerge } from "tailwind-merge";
import { setClassMerger } from "@/lib/utils";
import { SignInPage, type SecondStepChallenge } from "@/pages/auth/SignInPage";
import { RegisterPage } from "@/pages/auth/RegisterPage";
import { ForgotPasswordPage, ResetPasswordPage } from "@/pages/auth/PasswordResetPages";
import { VerifyEmailPage } from "@/pages/auth/VerifyEmailPage";
import { SsoCallbackPage } from "@/pages/auth/SsoCallbackPage";
import { SecondStepForm } from "@/pages/auth/SecondStepForm";
import { renderWithProviders } from "./utils";

// The signed-out pages are drawn before `tailwind-merge` is loaded (it is not in the sign-in page's first
// download, see `lib/utils.cn`): they must pass no class that conflicts with a component's own, i.e. look the
// same with and without merging.
const step = { step_token: "t", methods: ["totp", "recovery", "passkey"], expires_in: 300, passkey_options: {} } as unknown as SecondStepChallenge;
const pages: [string, React.ReactElement][] = [
  ["sign-in", <SignInPage />],
  ["second step", <SecondStepForm step={step} onDone={() => {}} onRestart={() => {}} />],
  ["register", <RegisterPage />],
  ["forgot password", <ForgotPasswordPage />],
  ["reset password", <ResetPasswordPage />],
  ["verify email", <VerifyEmailPage />],
  ["sso callback", <SsoCallbackPage />],
];

function drawn(ui: React.ReactElement): string {
  const html = renderWithProviders(ui).container.innerHTML;
  cleanup();
  return html;
}

describe("the signed-out pages without class merging", () => {
  afterAll(() => setClassMerger((classes) => classes));

  it.each(pages)("the %s page looks the same as with tailwind-merge", (_, ui) => {
    setClassMerger((classes) => classes);
    const plain = drawn(ui);
    setClassMerger(twMerge);
    expect(plain).toEqual(drawn(ui));
    expect(plain).toContain("class=");
  });
});
