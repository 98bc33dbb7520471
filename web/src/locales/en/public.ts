// What the signed-out pages (sign-in, register, password reset) and the loading and error states say: loaded first.
const messages = {
  common: {
    actions: "Actions", add: "Add", all: "All", apply: "Apply", cancel: "Cancel", close: "Close", delete: "Delete",
    loading: "Loading…", no: "No", yes: "Yes", notification: "Notifications", reset: "Reset", retry: "Try again", save: "Save",
  },
  header: { theme: "Theme", language: "Language", user_menu: "Account menu", sign_out: "Sign out" },
  theme: { light: "Light", dark: "Dark", system: "System" },
  role: { user: "User", admin: "Admin" },
  errors: {
    generic: "Something went wrong.", generic_hint: "Check what you entered and try again.",
    forbidden_hint: "You don't have access to this. Ask an administrator if you need it.",
    not_found_hint: "It may have been deleted, or the link is wrong.",
    server_hint: "The server could not answer. Try again in a moment; if it keeps failing, tell your administrator.",
    request_id: "Request id: {{id}}",
    page_not_found: "This page does not exist", page_not_found_hint: "Check the address or go back home.",
    no_app_access: "You don't have access to this app", no_app_access_hint: "An administrator can grant it to you. Your available apps are on the Apps page.",
  },
  auth: {
    email_or_username: "Email or username", username_optional: "Username (optional)",
    username_hint: "3–50 letters, digits, dots, dashes or underscores; sign in with it or the email.",
    sign_in_passkey: "Sign in with a passkey", sign_in_with: "Sign in with {{name}}",
    sign_in_title: "Sign in", sign_in_description: "Welcome back to Atrium.", sign_in: "Sign in", signing_in: "Signing in…",
    email: "Email", password: "Password", remember_me: "Remember me", forgot_link: "Forgot password?",
    no_account: "No account yet?", register_link: "Create one", have_account: "Already have an account?",
    register_title: "Create your account", register_description: "It takes a minute.", full_name: "Full name (optional)",
    confirm_password: "Repeat the password", mismatch: "The passwords do not match.", create_account: "Create account", creating: "Creating…",
    forgot_title: "Forgot your password?", forgot_description: "Enter your email and we'll send you a link to set a new one.",
    send_link: "Send link", forgot_sent: "If an account exists for {{email}}, a link to reset the password is on its way. Check your inbox.",
    back_to_sign_in: "Back to sign in", reset_title: "Set a new password", reset_description: "Choose a new password for your account.",
    new_password: "New password", set_password: "Set password", missing_token: "This link is incomplete: open the link from the email again.",
    verify_title: "Verify your email", verifying: "Verifying…", verified: "Your email address is verified. Thank you!", continue: "Continue",
    reason_revoked: "Your session was ended. Please sign in again.", reason_expired: "Your session expired. Please sign in again.",
    reason_signed_out: "You are signed out.", reason_registered: "Account created. Check your email for a verification link, then sign in.",
    reason_reset: "Your password is changed. Sign in with the new one.", reason_verified: "Email verified. You can sign in.",
  },
  password: {
    rules_title: "The password must:", rule_min_length: "be at least {{min}} characters long", rule_max_length: "be at most {{max}} characters long",
    rule_no_email: "not contain the name part of your email", rule_common: "not be a commonly used password (checked when you submit)",
    met: "met", not_met: "not met yet", server_verdict: "The server did not accept this password:",
  },
  shared_link: {
    title: "A shared document", hint: "Someone shared this document with you through a link.",
    password_needed: "This link is protected by a password.", password: "Password", open: "Open",
    download: "Download", previews: "Pages", page: "Page {{number}}", no_previews: "There are no page previews yet.",
    pages_one: "{{count}} page", pages_other: "{{count}} pages", expires: "Available until {{date}}",
  },
};

export default messages;
