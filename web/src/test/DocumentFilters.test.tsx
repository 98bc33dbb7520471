import * as React from "react";
import { act, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { DocumentFilters, activeFilterCount } from "@/components/documents/DocumentFilters";
import type { DocumentQuery } from "@/lib/documents/queries";
import { renderWithProviders } from "./utils";

function Harness({ onChange, initial = {} }: { onChange: (q: DocumentQuery) => void; initial?: DocumentQuery }) {
  const [q, setQ] = React.useState<DocumentQuery>(initial);
  return (
    <DocumentFilters
      value={q}
      categories={[{ id: "c1", name: "Taxes", document_count: 0, created_at: "2024-01-01T00:00:00Z" }, { id: "c2", name: "Home", document_count: 0, created_at: "2024-01-01T00:00:00Z" }]}
      onChange={(next) => {
        setQ(next);
        onChange(next);
      }}
    />
  );
}

describe("document filters", () => {
  it("debounces the search box into one change", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
    const onChange = vi.fn();
    renderWithProviders(<Harness onChange={onChange} />);
    await user.type(screen.getByLabelText("Search documents"), "acme");
    expect(onChange).not.toHaveBeenCalled();
    await act(async () => {
      vi.advanceTimersByTime(350);
    });
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(onChange.mock.calls[0][0].q).toBe("acme");
    vi.useRealTimers();
  });

  it("toggles status, type and category chips, date ranges and sort", async () => {
    const user = userEvent.setup();
    const onChange = vi.fn();
    renderWithProviders(<Harness onChange={onChange} />);
    await user.click(screen.getByRole("button", { name: "Filters" }));
    const ready = screen.getByRole("button", { name: "Ready" });
    await user.click(ready);
    expect(ready).toHaveAttribute("aria-pressed", "true");
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ status: ["ready"] }));
    await user.click(screen.getByRole("button", { name: "Invoice" }));
    await user.click(screen.getByRole("button", { name: "Taxes" }));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ status: ["ready"], document_type: ["invoice"], category_any: ["c1"] }));

    await user.type(screen.getAllByLabelText("From")[0], "2024-03-01");
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ uploaded_from: "2024-03-01" }));
    await user.selectOptions(screen.getByLabelText("Sort by"), "title");
    await user.selectOptions(screen.getByLabelText("Order"), "asc");
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ sort: "title", order: "asc" }));
    expect(activeFilterCount(onChange.mock.lastCall![0])).toBe(4);

    await user.click(ready);
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ status: [] }));
    await user.click(screen.getByRole("button", { name: "Clear filters" }));
    expect(activeFilterCount(onChange.mock.lastCall![0])).toBe(0);
  });
});
