// JSON in the dialect of Python's `json` module, which the harness's caller uses.
//
// Weights can hold NaN, +-Infinity and -0.0 (float16 0x7c00 decodes to Infinity).
// JSON.stringify turns the first three into null and -0 into 0, and JSON.parse
// rejects the bare NaN/Infinity tokens that Python's json.dumps writes. Python's
// json.loads reads NaN, Infinity, -Infinity and -0.0, so those are emitted as is.

function numberToken(n) {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  if (Object.is(n, -0)) return '-0.0';
  return JSON.stringify(n);
}

/** JSON.stringify (compact) that keeps non-finite numbers and -0.0. */
export function stringifyPyJSON(value) {
  if (typeof value === 'number') return numberToken(value);
  if (Array.isArray(value)) return `[${value.map(stringifyPyJSON).join(',')}]`;
  if (value !== null && typeof value === 'object' && typeof value.toJSON !== 'function') {
    const members = Object.entries(value)
        .filter(([, member]) => member !== undefined)
        .map(([key, member]) => `${JSON.stringify(key)}:${stringifyPyJSON(member)}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// A JSON string literal, or one of Python's bare non-finite tokens outside strings.
const STRING_OR_NONFINITE = /"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g;

/**
 * JSON.parse that also accepts Python's bare NaN/Infinity/-Infinity; they come
 * back as the strings 'NaN', 'Infinity', '-Infinity', which Number() converts.
 */
export function parsePyJSON(text) {
  const quoteBareToken = (token) => (token.startsWith('"') ? token : `"${token}"`);
  return JSON.parse(text.replace(STRING_OR_NONFINITE, quoteBareToken));
}
