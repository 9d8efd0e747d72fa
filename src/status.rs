//! Exit statuses with a meaning of their own, shared by every layer that
//! ends a command: the shell, the builtins and the launches.

/// Exit status of a command that was interrupted with Ctrl-C.
pub const STATUS_INTERRUPTED: i32 = 130;
/// Exit status for a usage or syntax error.
pub const STATUS_USAGE: i32 = 2;
/// Exit status for a command that does not exist.
pub const STATUS_NOT_FOUND: i32 = 127;
/// Exit status of a command whose output went to a closed pipe (SIGPIPE).
pub const STATUS_BROKEN_PIPE: i32 = 141;
