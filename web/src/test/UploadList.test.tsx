import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { UploadList, isUploadFinished, uploadRowState } from "@/components/documents/UploadList";
import type { UploadBatch } from "@/api/types";
import { uploadedDocument, type UploadItem } from "@/lib/uploads";
import { renderWithProviders } from "./utils";

const base: UploadItem = { key: "k", filename: "invoice.pdf", size: 1000, loaded: 0, phase: "waiting" };

describe("upload list", () => {
  it("computes each row's progress from the upload, then from processing", () => {
    expect(uploadRowState(base, undefined)).toEqual({ percent: 0, stage: "waiting" });
    expect(uploadRowState({ ...base, phase: "uploading", loaded: 500 }, undefined)).toEqual({ percent: 50, stage: "uploading" });
    // Multipart framing makes the request a bit larger than the file: never past 100 %.
    expect(uploadRowState({ ...base, phase: "uploading", loaded: 1200 }, undefined).percent).toBe(100);
    const uploaded = { ...base, phase: "uploaded" as const, documentId: "d1", loaded: 1000 };
    const extracting = uploadRowState(uploaded, "extracting", { document_id: "d1", run_id: "r1", stage: "extract", status: "extracting", page: 5, pages: 10, message: "" });
    expect(extracting.stage).toBe("extracting");
    expect(extracting.percent).toBeGreaterThan(10);
    expect(extracting.percent).toBeLessThan(85);
    // OCR comes after extraction and before analysis, page by page.
    const ocr = uploadRowState(uploaded, "ocr", { document_id: "d1", run_id: "r1", stage: "extract", status: "ocr", page: 2, pages: 4, message: "OCR page 2 of 4" });
    expect(ocr.stage).toBe("ocr");
    expect(ocr.percent).toBeGreaterThan(extracting.percent);
    expect(ocr.percent).toBeLessThan(85);
    expect(isUploadFinished(uploaded, "ocr")).toBe(false);
    expect(uploadRowState(uploaded, "ready")).toEqual({ percent: 100, stage: "ready" });
    expect(isUploadFinished(uploaded, "analyzing")).toBe(false);
    expect(isUploadFinished(uploaded, "ready")).toBe(true);
    expect(isUploadFinished({ ...base, phase: "failed" })).toBe(true);
  });

  it("reads the gateway's upload answer", () => {
    const batch = (b: unknown) => b as UploadBatch; // only the parts the function reads
    expect(uploadedDocument(batch({ documents: [{ document: { id: "d1" }, duplicate: true }], errors: [] }))).toMatchObject({ document: { id: "d1" }, duplicate: true });
    expect(uploadedDocument(batch({ documents: [], errors: [{ filename: "x.pdf", code: "unsupported", message: "Not a PDF" }] }))).toEqual({ error: "Not a PDF" });
  });

  it("renders a labelled progress bar per file, the failure reason, and dismisses rows", async () => {
    const user = userEvent.setup();
    const onDismiss = vi.fn();
    const items: UploadItem[] = [
      { ...base, key: "a", filename: "a.pdf", phase: "uploading", loaded: 250 },
      { ...base, key: "b", filename: "b.pdf", phase: "failed", error: "The file is not a PDF." },
      { ...base, key: "c", filename: "c.pdf", phase: "failed", error: "interrupted" },
    ];
    renderWithProviders(<UploadList items={items} onDismiss={onDismiss} />);
    expect(screen.getByText("3 uploads")).toBeInTheDocument();
    const bar = screen.getByRole("progressbar", { name: "Progress of a.pdf" });
    expect(bar).toHaveAttribute("aria-valuenow", "25");
    expect(screen.getByText("Uploading… 25%")).toBeInTheDocument();
    expect(screen.getByText(/The file is not a PDF\./)).toBeInTheDocument();
    expect(screen.getByText(/interrupted by a page reload/)).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Remove b.pdf from the list" }));
    expect(onDismiss).toHaveBeenCalledWith("b");
  });
});
