// The command box's argument line to a job's arg and kwarg, as the rx command line reads its words: quotes
// group words ('exit 3', "a b"), a backslash escapes the next character, name=value is a keyword argument,
// and a word that is a number, true/false, null or a JSON list/object becomes that value.

export class ArgsError extends Error {}

/** Split a line into words the way a POSIX shell does for quotes and backslashes (no expansion). */
export function splitWords(line) {
  const words = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word = word ?? "";
    } else if (c === "\\") {
      word = (word ?? "") + (i + 1 < line.length ? line[++i] : "");
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote) throw new ArgsError(`unclosed ${quote} quote`);
  if (word !== null) words.push(word);
  return words;
}

/** A word as a value: integers, decimals, true/false, null and JSON lists/objects are converted. */
export function wordValue(word) {
  if (/^[-+]?(0|[1-9][0-9]*)$/.test(word)) {
    const n = Number(word);
    return Number.isSafeInteger(n) ? n : word;
  }
  if (/^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/.test(word)) return Number(word);
  if (/^(true|True)$/.test(word)) return true;
  if (/^(false|False)$/.test(word)) return false;
  if (/^(null|None|~)$/.test(word)) return null;
  if (/^[[{]/.test(word)) {
    try {
      return JSON.parse(word);
    } catch {
      return word;
    }
  }
  return word;
}

/** The argument line as {arg: [...], kwarg: {...}}. */
export function parseArgs(line) {
  const arg = [];
  const kwarg = {};
  for (const word of splitWords(line)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(word);
    if (m) kwarg[m[1]] = wordValue(m[2]);
    else arg.push(wordValue(word));
  }
  return { arg, kwarg };
}
