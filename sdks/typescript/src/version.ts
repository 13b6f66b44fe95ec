/** This SDK's version; it follows the server's protocol version (crates/protocol). */
export const VERSION = "0.1.0";
