import publicMessages from "./public";
import appMessages from "./app";

/** All of English: the source of every key (src/test/i18n.test.ts checks Russian against it). */
const en = { ...publicMessages, ...appMessages };

export default en;
export type Messages = typeof en;
