// Apply the saved theme before first paint so a dark-mode user never sees a white flash.
// A file, not an inline script, so the page can run under a strict Content-Security-Policy.
try {
  var t = localStorage.getItem("atrium.theme") || "system";
  var dark = t === "dark" || (t === "system" && window.matchMedia("(prefers-color-scheme: dark)").matches);
  if (dark) document.documentElement.classList.add("dark");
} catch (e) {}
