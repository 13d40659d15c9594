// Config errors: each issue names the file, line, column and dotted path, so a person can go straight to it.
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  /** Dotted path such as listeners[0].routes[1].cluster (empty for the document). */
  path: string;
  message: string;
  /** The offending line as written, shown under the message with a caret (YAML syntax errors). */
  excerpt?: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** One line: FILE:LINE:COL path: message. */
export const formatIssue = (i: ConfigIssue): string =>
  `${i.file}:${i.line}:${i.col} ${i.path === '' ? '(root)' : i.path}: ${i.message}`;

/** The one-line form, then the offending line and a caret under the column when the issue carries one (for people). */
export function formatIssueWithExcerpt(i: ConfigIssue): string {
  if (i.excerpt === undefined) return formatIssue(i);
  // Keep the line's own tabs before the caret so it lands under the right character however tabs are shown.
  const pad = i.excerpt.slice(0, Math.max(0, i.col - 1)).replace(/[^\t]/g, ' ');
  return `${formatIssue(i)}\n    ${i.excerpt}\n    ${pad}^`;
}
