import { render, screen } from "@testing-library/react";
import { PasswordRules, passwordRules } from "@/components/PasswordRules";

describe("password rules", () => {
  it("checks length and the email's name part as the user types", () => {
    expect(passwordRules("short", "ann@example.com").map((r) => r.ok)).toEqual([false, true, true]);
    expect(passwordRules("a sturdy passphrase", "ann@example.com").every((r) => r.ok)).toBe(true);
    expect(passwordRules("my name is annabel!!", "annabel@example.com").find((r) => r.key === "no_email")?.ok).toBe(false);
    // A local part shorter than three letters is not a rule anyone could keep.
    expect(passwordRules("xy-and-more-letters", "xy@example.com").find((r) => r.key === "no_email")?.ok).toBe(true);
    expect(passwordRules("x".repeat(129), "").find((r) => r.key === "max_length")?.ok).toBe(false);
  });

  it("renders each rule's state and the server's verdict", () => {
    const { rerender } = render(<PasswordRules password="short" email="ann@example.com" />);
    const items = screen.getByTestId("password-rules").querySelectorAll("li[data-ok]");
    expect(items[0]).toHaveAttribute("data-ok", "false");
    expect(screen.getByText(/at least 12 characters/)).toBeInTheDocument();
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();

    rerender(<PasswordRules password="password1234" email="ann@example.com" serverErrors={["choose a password that is not on the list of commonly used passwords"]} />);
    expect(screen.getByTestId("password-rules").querySelectorAll("li[data-ok=false]")).toHaveLength(0);
    expect(screen.getByRole("alert")).toHaveTextContent("commonly used passwords");
  });
});
