import * as React from "react";
import * as ToastPrimitive from "@radix-ui/react-toast";
import { X } from "lucide-react";
import { useTranslation } from "@/lib/i18n";
import { cn } from "@/lib/utils";

type ToastVariant = "default" | "success" | "destructive";
interface ToastItem {
  id: number;
  title: string;
  description?: string;
  variant: ToastVariant;
}

type Push = (t: { title: string; description?: string; variant?: ToastVariant }) => void;
const ToastContext = React.createContext<Push>(() => undefined);

export function useToast(): Push {
  return React.useContext(ToastContext);
}

let nextId = 1;

export function Toaster({ children }: { children: React.ReactNode }) {
  const { t } = useTranslation();
  const [items, setItems] = React.useState<ToastItem[]>([]);
  const push = React.useCallback<Push>((item) => {
    setItems((prev) => [...prev.slice(-3), { id: nextId++, variant: "default", ...item }]);
  }, []);
  const remove = (id: number) => setItems((prev) => prev.filter((x) => x.id !== id));
  return (
    <ToastContext.Provider value={push}>
      <ToastPrimitive.Provider swipeDirection="right" duration={5000} label={t("common.notification")}>
        {children}
        {items.map((item) => (
          <ToastPrimitive.Root
            key={item.id}
            onOpenChange={(open) => !open && remove(item.id)}
            className={cn(
              "pointer-events-auto relative flex w-full items-start justify-between gap-3 rounded-lg border bg-background p-4 pr-8 shadow-lg",
              item.variant === "destructive" && "border-destructive/50",
              item.variant === "success" && "border-success/50",
            )}
          >
            <div className="grid grid-cols-1 gap-1">
              <ToastPrimitive.Title className={cn("text-sm font-semibold", item.variant === "destructive" && "text-destructive")}>{item.title}</ToastPrimitive.Title>
              {item.description && <ToastPrimitive.Description className="text-sm text-muted-foreground">{item.description}</ToastPrimitive.Description>}
            </div>
            <ToastPrimitive.Close className="absolute right-2 top-2 rounded-md p-1 opacity-70 hover:opacity-100" aria-label={t("common.close")}>
              <X className="h-4 w-4" />
            </ToastPrimitive.Close>
          </ToastPrimitive.Root>
        ))}
        <ToastPrimitive.Viewport className="fixed bottom-0 right-0 z-[100] flex max-h-screen w-full flex-col gap-2 p-4 sm:max-w-[380px]" />
      </ToastPrimitive.Provider>
    </ToastContext.Provider>
  );
}
