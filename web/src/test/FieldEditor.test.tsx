import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { FieldEditor, parseFieldInput } from "@/components/documents/FieldEditor";
import { renderWithProviders } from "./utils";

describe("field editor", () => {
  it("shows the value with its provenance and saves an inline edit", async () => {
    const user = userEvent.setup();
    const onSave = vi.fn().mockResolvedValue(undefined);
    renderWithProviders(<FieldEditor name="sender" field={{ value: "Blue Harbor", source: "model", provider: "builtin", model: "rules" }} onSave={onSave} />);
    expect(screen.getByTestId("field-sender-value")).toHaveTextContent("Blue Harbor");
    expect(screen.getByLabelText("From the AI model (builtin, rules)")).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Edit Sender" }));
    const input = screen.getByLabelText("Sender");
    await user.clear(input);
    await user.type(input, "Blue Harbor Ltd{Enter}");
    await waitFor(() => expect(onSave).toHaveBeenCalledWith("sender", "Blue Harbor Ltd"));
    await waitFor(() => expect(screen.queryByLabelText("Sender", { selector: "input" })).not.toBeInTheDocument());
  });

  it("accepts and rejects a model suggestion; a user value has no accept/reject", async () => {
    const user = userEvent.setup();
    const onSave = vi.fn().mockResolvedValue(undefined);
    const { unmount } = renderWithProviders(<FieldEditor name="total_amount" field={{ value: "1 234,50", source: "model" }} onSave={onSave} />);
    await user.click(screen.getByRole("button", { name: "Accept Total" }));
    expect(onSave).toHaveBeenLastCalledWith("total_amount", "1234.50");
    await user.click(screen.getByRole("button", { name: "Reject Total" }));
    expect(onSave).toHaveBeenLastCalledWith("total_amount", null);
    unmount();

    renderWithProviders(<FieldEditor name="currency" field={{ value: "EUR", source: "user" }} onSave={onSave} />);
    expect(screen.queryByRole("button", { name: "Accept Currency" })).not.toBeInTheDocument();
    expect(screen.getByLabelText("Set by you — kept when re-processing")).toBeInTheDocument();
  });

  it("shows the server's refusal and stays in edit mode; Escape cancels", async () => {
    const user = userEvent.setup();
    const onSave = vi.fn().mockRejectedValue(new Error("currency: use a three-letter ISO code"));
    renderWithProviders(<FieldEditor name="currency" field={{ value: null, source: "model" }} onSave={onSave} />);
    expect(screen.getByTestId("field-currency-value")).toHaveTextContent("Not set");
    await user.click(screen.getByRole("button", { name: "Edit Currency" }));
    await user.type(screen.getByLabelText("Currency"), "euro{Enter}");
    expect(onSave).toHaveBeenCalledWith("currency", "EURO");
    expect(await screen.findByRole("alert")).toHaveTextContent("three-letter");
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("textbox")).not.toBeInTheDocument();
  });

  it("turns input text into API values", () => {
    expect(parseFieldInput("sender", "  ")).toBeNull();
    expect(parseFieldInput("currency", "usd")).toBe("USD");
    expect(parseFieldInput("net_amount", "12 000,5")).toBe("12000.5");
  });
});
