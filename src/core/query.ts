// Query-string pieces as application/x-www-form-urlencoded reads them: `+` is a space, percent-escapes decoded; a
// malformed escape leaves the text as it came (never throws: this runs on what clients send).
export function decodeQueryComponent(s: string): string {
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
