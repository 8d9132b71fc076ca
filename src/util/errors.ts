/**
 * An error the user can act on: printed as one line, exit code 1 (no stack unless --verbose).
 * Control characters in the message (a tensor or entry name read from a hostile file) are escaped,
 * so that the message stays one line whatever it quotes.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(printable(message));
    this.name = "UserError";
  }
}

/** Text with line breaks and other control characters written as escapes (\n, \x1b). */
export function printable(s: string): string {
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]/g, (c) =>
    c === "\n" ? "\\n" : c === "\r" ? "\\r" : c.charCodeAt(0) > 0xff ? `\\u${c.charCodeAt(0).toString(16)}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** A failed system call as Node and Bun report it (`code` is the errno name). */
export interface SystemError extends Error {
  code: string;
  path?: string;
  dest?: string;
  syscall?: string;
}

export function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as SystemError).code === "string" && /^E[A-Z0-9]+$/.test((err as SystemError).code);
}

/** What an errno means, and what the user can do about it. */
const ERRNO: Record<string, [meaning: string, todo: string]> = {
  ENOENT: ["no such file or directory", "check the path"],
  EACCES: ["permission denied", "check the permissions of the file and of the folders above it (ls -l), or use a path you may use"],
  EPERM: ["operation not permitted", "check the file's owner and permissions, or use a path you own"],
  EROFS: ["read-only file system", "write to a writable location instead"],
  ENOSPC: ["no space left on the device", "free space (df -h shows how much is left) or write to another disk, then run again (predict: --resume keeps the finished parts)"],
  EDQUOT: ["disk quota exceeded", "free space within your quota or write to another disk, then run again (predict: --resume keeps the finished parts)"],
  EFBIG: ["file too large for this file system", "write to a file system that allows larger files"],
  EEXIST: ["already exists", "remove it or choose another name"],
  ENOTEMPTY: ["directory not empty", "empty or remove it, or choose another directory"],
  EISDIR: ["is a directory, a file was expected", "give the path of a file"],
  ENOTDIR: ["a part of the path is not a directory", "check the path"],
  ENAMETOOLONG: ["file name too long", "use a shorter path"],
  ELOOP: ["too many levels of symbolic links", "check the symbolic links along the path"],
  ESPIPE: ["cannot seek: a pipe, socket or terminal, not a regular file", "save the data to a regular file and give that path"],
  EPIPE: ["the reading end of the pipe was closed", "check the command reading virnuc's output"],
  ENXIO: ["no such device or address", "give a regular file"],
  ENODEV: ["the file system does not support this operation", "copy the file to a local disk"],
  ETXTBSY: ["file busy", "close the program using it and retry"],
  EBUSY: ["resource busy", "close the program using it and retry"],
  EXDEV: ["cannot move across file systems", "keep the temporary and final paths on one file system"],
  EMFILE: ["too many open files in this process", "raise the limit (ulimit -n) and retry"],
  ENFILE: ["too many open files on the system", "close other programs or raise the system limit, then retry"],
  ENOMEM: ["out of memory", "free memory or use smaller batches"],
  EIO: ["input/output error", "the disk or network file system failed: check the device (dmesg) and retry"],
  EAGAIN: ["resource temporarily unavailable", "retry"],
  EINTR: ["interrupted", "retry"],
  EINVAL: ["invalid argument for this file", "check that it is a regular file on a local file system"],
};

/**
 * A system error (errno) as one line: the file, what went wrong in words, the errno and the call,
 * and what to do. `path` names the file where the error itself does not (writes to a descriptor),
 * `doing` says what virnuc was doing ("reading a model file").
 */
export function systemErrorMessage(err: SystemError, path?: string, doing?: string): string {
  const file = err.path ?? path;
  const target = file ? (err.dest ? `${file} -> ${err.dest}` : file) : undefined;
  const [meaning, todo] = ERRNO[err.code] ?? [firstClause(err.message, err.code), "check the file and retry"];
  const call = err.syscall ? `${err.code}, ${err.syscall}` : err.code;
  return `${target ? `${target}: ` : ""}${meaning} (${call})${doing ? ` while ${doing}` : ""}: ${todo}`;
}

/** "EACCES: permission denied, open '/x'" -> "permission denied". */
function firstClause(message: string, code: string): string {
  const m = message.replace(new RegExp(`^${code}:\\s*`), "").split(/,\s*(?:open|read|write|stat|mkdir|rename|unlink|rmdir|scandir|mmap|lstat|fstat|close|copyfile|access|realpath|readlink|symlink|link|chmod|utime|fsync|ftruncate)\b/)[0];
  return m.trim() || code;
}

/** The error to show for a failed file operation: system errors become a UserError naming `path`. */
export function fileError(err: unknown, path?: string, doing?: string): unknown {
  if (err instanceof UserError) return err;
  if (isSystemError(err)) return new UserError(systemErrorMessage(err, path, doing));
  return err;
}

/** Format any thrown value as one line (system errors with their file and what to do). */
export function oneLine(err: unknown): string {
  const msg = isSystemError(err) ? systemErrorMessage(err) : err instanceof Error ? err.message : String(err);
  return msg.replace(/\s*\n\s*/g, " ").trim();
}

/** A command line the program cannot run (unknown command or option, missing argument): exit code 2. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = "UsageError";
  }
}
