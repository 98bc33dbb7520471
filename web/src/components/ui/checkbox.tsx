import * as React from "react";
import { cn } from "@/lib/utils";

export type CheckedState = boolean | "indeterminate";

interface CheckboxProps extends Omit<React.InputHTMLAttributes<HTMLInputElement>, "type" | "checked" | "onChange"> {
  checked?: CheckedState;
  onCheckedChange?: (checked: boolean) => void;
}

/** A native checkbox in the theme's colour ("indeterminate" = some of a list selected): the browser's own
 * keyboard and screen-reader behaviour, and `data-state` (checked, unchecked, indeterminate) as Radix had it. */
export const Checkbox = React.forwardRef<HTMLInputElement, CheckboxProps>(({ className, checked = false, onCheckedChange, ...props }, ref) => {
  const input = React.useRef<HTMLInputElement>(null);
  React.useImperativeHandle(ref, () => input.current!);
  React.useEffect(() => {
    if (input.current) input.current.indeterminate = checked === "indeterminate";
  }, [checked]);
  return (
    <input
      ref={input}
      type="checkbox"
      checked={checked === true}
      data-state={checked === "indeterminate" ? "indeterminate" : checked ? "checked" : "unchecked"}
      onChange={(e) => onCheckedChange?.(e.target.checked)}
      className={cn(
        "peer h-4 w-4 shrink-0 cursor-pointer rounded-sm accent-primary focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring disabled:cursor-not-allowed disabled:opacity-50",
        className,
      )}
      {...props}
    />
  );
});
Checkbox.displayName = "Checkbox";
