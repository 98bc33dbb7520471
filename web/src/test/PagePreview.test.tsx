import { fireEvent, screen } from "@testing-library/react";
import { PagePreview } from "@/components/documents/PagePreview";
import { renderWithProviders } from "./utils";

describe("page preview", () => {
  it("lazy-loads the page's PNG of this run and disappears when there is none", () => {
    renderWithProviders(<PagePreview documentId="doc-1" runId="run-2" page={3} />);
    const img = screen.getByRole("img", { name: "Page 3" });
    expect(img).toHaveAttribute("loading", "lazy");
    expect(img.getAttribute("src")).toMatch(/\/documents\/doc-1\/pages\/3\/preview\?run=run-2$/);
    expect(img).toHaveAttribute("data-loaded", "false"); // a page-shaped placeholder until it arrives
    expect(img.className).toContain("aspect-[17/22]");

    fireEvent.load(img);
    expect(img).toHaveAttribute("data-loaded", "true");
    expect(img.className).not.toContain("animate-pulse");

    fireEvent.error(img);
    expect(screen.queryByRole("img", { name: "Page 3" })).not.toBeInTheDocument();
  });
});
