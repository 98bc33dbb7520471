import publicMessages from "./public";
import appMessages from "./app";

/** All of Russian. */
const ru = { ...publicMessages, ...appMessages };

export default ru;
