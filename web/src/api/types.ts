/**
 * The API's types by the names the app uses, all taken from `schema.ts` — generated from the gateway's
 * OpenAPI (`openapi.json`) by `scripts/api-types.mjs` on every build. Nothing here is written by hand
 * but the names: when the server's contract changes, `tsc` shows every place the app must follow.
 */
import type { components, paths } from "./schema";
import {
  editableFieldValues,
  pathsApiV1DocumentsGetParametersQuerySortValues,
  documentSummaryDocument_typeAnyOf0Values,
  documentSummaryStatusValues,
  documentsSettingsPublicOcr_modeValues,
  documentsSettingsPublicOcr_providerValues,
  documentsSettingsPublicProviderValues,
  taskPublicKindValues,
  taskPublicStatusValues,
} from "./schema";

type Schemas = components["schemas"];

// Errors: the body of every failure
export type ErrorEnvelope = Schemas["ErrorEnvelope"];

// Accounts and sessions
export type User = Schemas["UserPublic"];
export type Role = User["role"];
export type SessionInfo = Schemas["SessionInfo"];
export type SessionList = Schemas["SessionList"];
export type TokenPair = Schemas["TokenPair"];
export type BrowserSession = Schemas["BrowserSession"];
export type Profile = Schemas["ProfilePublic"];
export type ProfileUpdate = Schemas["ProfileUpdate"];

// Sign-in security: second factors, passkeys, personal access tokens, single sign-on, external auth
export type SecondFactorStatus = Schemas["SecondFactorStatus"];
export type SecondFactorMethod = Schemas["SecondStep"]["method"];
export type TotpEnrolment = Schemas["TotpEnrolment"];
export type RecoveryCodes = Schemas["RecoveryCodes"];
export type SecurityPolicy = Schemas["SecurityPolicy"];
export type SecondFactorPolicy = SecurityPolicy["second_factor"];
export type PasskeyCeremony = Schemas["PasskeyCeremony"];
export type PasskeyInfo = Schemas["PasskeyInfo"];
export type PasskeyList = Schemas["PasskeyList"];
export type PatInfo = Schemas["PatInfo"];
export type PatList = Schemas["PatList"];
export type PatCreated = Schemas["PatCreated"];
export type PatScope = PatInfo["scopes"][number];
export type SsoButton = Schemas["SsoButton"];
export type SsoButtons = Schemas["SsoButtons"];
export type SsoRedirect = Schemas["SsoRedirect"];
export type SsoProvider = Schemas["SsoProviderAdmin"];
export type SsoProviderList = Schemas["SsoProviderList"];
export type SsoProviderBody = Schemas["SsoProviderBody"];
export type ExternalAuthSettings = Schemas["ExternalAuthSettings"];
export type ExternalAuthUpdate = Schemas["ExternalAuthUpdate"];

// Apps and permissions
export type AppInfo = Schemas["AppPublic"];
export type AppList = Schemas["AppList"];
export type AdminApp = Schemas["AppAdmin"];
export type AdminAppList = Schemas["AdminAppList"];
export type UserGrants = Schemas["UserGrants"];
export type Group = Schemas["GroupPublic"];
export type GroupList = Schemas["GroupList"];
export type UserPage = Schemas["UserPage"];
export type AdminUserChanges = Schemas["AdminUserChanges"];
export type AuditEntry = Schemas["AuditEntry"];
export type AuditPage = Schemas["AuditPage"];
export type SystemReport = Schemas["SystemReport"];
export type UsersQuery = NonNullable<paths["/api/v1/admin/users"]["get"]["parameters"]["query"]>;
export type AuditQuery = NonNullable<paths["/api/v1/admin/audit"]["get"]["parameters"]["query"]>;

// Documents
export type DocumentSummary = Schemas["DocumentSummary"];
export type DocumentDetail = Schemas["DocumentDetail"];
export type DocumentPage = Schemas["DocumentPage"];
export type DocumentCounts = Schemas["DocumentCounts"];
export type DocumentsQuery = NonNullable<paths["/api/v1/documents"]["get"]["parameters"]["query"]>;
export type DocumentEdit = Schemas["DocumentEdit"];
export type UploadBatch = Schemas["UploadBatch"];
/** The data of the one event `GET /events` sends (`event: progress`). */
export type DocumentProgress = Schemas["DocumentProgress"];
export type EditableField = Schemas["EditableField"];
export type DocumentStatus = DocumentSummary["status"];
export type DocumentType = NonNullable<DocumentSummary["document_type"]>;
export type FieldValue = Schemas["FieldValue"];
export type CategoryRef = Schemas["CategoryRefPublic"];
export type Category = Schemas["CategoryPublic"];
export type CategoryList = Schemas["CategoryList"];
export type BulkAction = Schemas["BulkAction"];
export type BulkResult = Schemas["BulkResult"];
export type Task = Schemas["TaskPublic"];
export type TaskPage = Schemas["TaskPage"];
export type TasksQuery = NonNullable<paths["/api/v1/tasks"]["get"]["parameters"]["query"]>;
export type TaskStats = Schemas["TaskStats"];
export type TaskStatus = Task["status"];
export type TaskKind = Task["kind"];
export type DocumentsSettings = Schemas["DocumentsSettingsPublic"];
export type DocumentsSettingsUpdate = Schemas["DocumentsSettingsUpdate"];
export type ProviderName = NonNullable<DocumentsSettings["provider"]>;
export type OcrMode = NonNullable<DocumentsSettings["ocr_mode"]>;
export type OcrProviderName = NonNullable<DocumentsSettings["ocr_provider"]>;
export type ProviderTestResult = Schemas["ProviderTestResult"];

// Sharing: people and groups with a role, and links for people without an account
export type Person = Schemas["PersonPublic"];
export type AccessRole = DocumentSummary["role"];
export type Share = Schemas["SharePublic"];
export type ShareRole = Share["role"];
export type ShareList = Schemas["ShareList"];
export type ShareCreate = Schemas["ShareCreate"];
export type GroupNames = Schemas["GroupNames"];
export type ShareLink = Schemas["LinkPublic"];
export type LinkMode = ShareLink["mode"];
export type LinkCreate = Schemas["LinkCreate"];
export type LinkCreated = Schemas["LinkCreated"];
export type LinkList = Schemas["LinkList"];
export type LinkInfo = Schemas["LinkInfo"];

/** An optional enum's values without the `null` its generated type admits. */
function present<T>(values: ReadonlyArray<T | null>): readonly T[] {
  return values.filter((v): v is T => v !== null);
}

// The server's enums as values (lists to render, in the server's order).
export const DOCUMENT_STATUSES: readonly DocumentStatus[] = documentSummaryStatusValues;
export const DOCUMENT_TYPES: readonly DocumentType[] = present(documentSummaryDocument_typeAnyOf0Values);
/** The fields a user may edit, in the order the detail page shows them (declared once, in contracts/). */
export const EDITABLE_FIELDS: readonly EditableField[] = editableFieldValues;
export const DOCUMENT_SORT_KEYS: readonly NonNullable<DocumentsQuery["sort"]>[] = pathsApiV1DocumentsGetParametersQuerySortValues;
export const TASK_STATUSES: readonly TaskStatus[] = taskPublicStatusValues;
export const TASK_KINDS: readonly TaskKind[] = taskPublicKindValues;
export const PROVIDERS: readonly ProviderName[] = documentsSettingsPublicProviderValues;
export const OCR_MODES: readonly OcrMode[] = documentsSettingsPublicOcr_modeValues;
export const OCR_PROVIDERS: readonly OcrProviderName[] = documentsSettingsPublicOcr_providerValues;
