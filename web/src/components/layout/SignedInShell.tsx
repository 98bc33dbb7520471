import "@/lib/class-merge"; // before any signed-in page renders: `cn` merges conflicting classes
import { Toaster } from "@/components/ui/toast";
import { TooltipProvider } from "@/components/ui/tooltip";
import { useApps } from "@/lib/apps";
import { useMe } from "@/lib/auth";
import { LiveEventsProvider } from "@/lib/documents/live";
import { UploadsProvider } from "@/lib/uploads";
import { AppShell } from "./AppShell";

/** Everything the signed-in pages share — providers and the shell — loaded as one chunk after sign-in. */
export function SignedInShell() {
  const me = useMe();
  const apps = useApps(!!me.data);
  const hasDocs = (apps.data ?? []).some((a) => a.key === "documents");
  return (
    <TooltipProvider delayDuration={300}>
      <Toaster>
        <LiveEventsProvider enabled={!!me.data && hasDocs}>
          <UploadsProvider>
            <AppShell />
          </UploadsProvider>
        </LiveEventsProvider>
      </Toaster>
    </TooltipProvider>
  );
}
