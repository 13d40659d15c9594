// Config errors: each issue names the file, line, column and dotted path, so a person can go straight to it.
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  /** Dotted path such as listeners[0].routes[1].cluster (empty for the document). */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export const formatIssue = (i: ConfigIssue): string =>
  `${i.file}:${i.line}:${i.col} ${i.path === '' ? '(root)' : i.path}: ${i.message}`;

