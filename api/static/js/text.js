// Untrusted text from the API (job and key names, reasons, paths): control characters and the
// bidirectional-formatting characters are shown as visible escapes (\x1b, \u202e), the rule of
// jobstore/text.py, so a right-to-left override cannot make a name read as something else. New
// names and reasons with them are refused; this covers rows stored earlier or by other sources.

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

function escapeChar(char) {
  const code = char.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

export function visible(text) {
  return text.replace(UNSAFE, escapeChar);
}

/** A parsed JSON value with every string in it (keys too) made visible. */
export function visibleData(data) {
  if (typeof data === "string") return visible(data);
  if (Array.isArray(data)) return data.map(visibleData);
  if (data && typeof data === "object") {
    return Object.fromEntries(Object.entries(data).map(([key, value]) => [visible(key), visibleData(value)]));
  }
  return data;
}

/** JSON text from the API (a stream message), parsed and made visible. */
export const parseVisible = (text) => visibleData(JSON.parse(text));
