import React from "react";
import ReactDOM from "react-dom/client";
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import "./index.css";
import { initI18n } from "./lib/i18n";
import { App } from "./App";
import { ApiError } from "./lib/api";
import { APPS_KEY } from "./lib/apps";
import { ME_KEY } from "./lib/auth";
import { ThemeProvider } from "./lib/theme";

// A 403 may mean an app grant was just revoked: refresh the app list so the sidebar follows at once. Or that
// the security policy now asks this account for a second factor: refresh the account, whose banner says so.
const onForbidden = (error: unknown) => {
  if (!(error instanceof ApiError && error.status === 403)) return;
  const enrol = (error.details as { reason?: string } | null)?.reason === "enrol_second_factor";
  void queryClient.invalidateQueries({ queryKey: enrol ? ME_KEY : APPS_KEY });
};

const queryClient: QueryClient = new QueryClient({
  queryCache: new QueryCache({ onError: onForbidden }),
  mutationCache: new MutationCache({ onError: onForbidden }),
  defaultOptions: {
    queries: {
      retry: (count, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
      refetchOnWindowFocus: true,
    },
  },
});

// The first render waits for the messages of the language it shows (a chunk of its own); if they cannot be
// loaded, the app still renders (showing message keys) rather than a blank page.
void initI18n()
  .catch((e: unknown) => console.error("messages not loaded", e))
  .then(() =>
    ReactDOM.createRoot(document.getElementById("root")!).render(
      <React.StrictMode>
        <ThemeProvider>
          <QueryClientProvider client={queryClient}>
            <App />
          </QueryClientProvider>
        </ThemeProvider>
      </React.StrictMode>,
    ),
  );
