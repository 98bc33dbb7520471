import type * as React from "react";
import { Card, CardContent, CardDescription, CardHeader } from "@/components/ui/card";
import { Label } from "@/components/ui/label";
import { Brand } from "@/components/layout/Brand";
import { LanguageSelect } from "@/components/layout/LanguageSelect";

/** The frame of the signed-out pages: brand and language above one card. */
export function AuthLayout({ title, description, children, footer }: { title: string; description?: string; children: React.ReactNode; footer?: React.ReactNode }) {
  return (
    <div className="flex min-h-screen flex-col items-center justify-center gap-6 bg-muted/40 p-4">
      <div className="flex w-full max-w-sm items-center justify-between">
        <Brand />
        <LanguageSelect />
      </div>
      <Card className="w-full max-w-sm">
        <CardHeader>
          {/* CardTitle's classes with a larger size, spelt out: no class merging on the signed-out pages */}
          <h2 className="text-xl font-semibold leading-none tracking-tight">
            <span role="heading" aria-level={1}>{title}</span>
          </h2>
          {description && <CardDescription>{description}</CardDescription>}
        </CardHeader>
        <CardContent>{children}</CardContent>
      </Card>
      {footer && <div className="text-sm text-muted-foreground">{footer}</div>}
    </div>
  );
}

/** A note above the form (why the user is here, what just happened): text with a coloured edge, no icon
 * library in the signed-out pages' first download. */
export function Notice({ children, tone = "info" }: { children: React.ReactNode; tone?: "info" | "success" }) {
  return (
    <div role="status" className={`mb-4 rounded-md border border-l-4 bg-muted/60 px-3 py-2 text-sm ${tone === "success" ? "border-l-success" : "border-l-primary"}`}>
      {children}
    </div>
  );
}

export function Field({ id, label, children, hint }: { id: string; label: string; children: React.ReactNode; hint?: React.ReactNode }) {
  return (
    <div className="grid grid-cols-1 gap-1.5">
      <Label htmlFor={id}>{label}</Label>
      {children}
      {hint}
    </div>
  );
}
