import { clsx, type ClassValue } from "clsx";

type ClassMerger = (classes: string) => string;
let mergeClasses: ClassMerger = (classes) => classes;

/** Lets a later class override a base class of the same kind (`tailwind-merge`, 21 kB of JavaScript). It comes
 * with the signed-in app and the public pages (`lib/class-merge`), not with the sign-in page's first download:
 * the signed-out pages pass no class that conflicts with a component's own (test `signedOutClasses`). */
export function setClassMerger(merge: ClassMerger): void {
  mergeClasses = merge;
}

export function cn(...inputs: ClassValue[]): string {
  return mergeClasses(clsx(inputs));
}

export function downloadBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Whether this browser can use passkeys at all (WebAuthn; `lib/webauthn` does the ceremonies). */
export function passkeysSupported(): boolean {
  return typeof window !== "undefined" && !!window.PublicKeyCredential && !!navigator.credentials;
}
