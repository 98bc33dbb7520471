import { parseProgress, PROGRESS_EVENT } from "@/lib/documents/live";

describe("live progress events", () => {
  it("takes the gateway's one event: `progress` with a DocumentProgress as data", () => {
    expect(PROGRESS_EVENT).toBe("progress");
    const data = { document_id: "d1", run_id: "r1", stage: "extract", status: "extracting", page: 2, pages: 5, message: "" };
    expect(parseProgress(JSON.stringify(data))).toEqual(data);
  });

  it("ignores anything else without throwing", () => {
    expect(parseProgress("not json")).toBeNull();
    expect(parseProgress("null")).toBeNull();
    expect(parseProgress(JSON.stringify({ data: { document_id: "d1", status: "ready" } }))).toBeNull();
    expect(parseProgress(JSON.stringify({ document_id: 7, status: "ready" }))).toBeNull();
  });
});
