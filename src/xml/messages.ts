/**
 * Typed Client Tracker messages: `parseX(text)` and `buildX(message)` for
 * every message. Parsers check the shape they read (root, required
 * elements, yes-or-no) and throw XmlInvalidError; full schema conformance is
 * validate.ts's job. Builders write the XML declaration, the Client Tracker
 * default namespace, and escape every value; they do not check lengths.
 */
export * from './messages-fetch.js';
export * from './messages-rpc.js';
export { buildErrorResponse, type ErrorResponse } from './response.js';
