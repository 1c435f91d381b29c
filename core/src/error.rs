//! The one error type of the engine. Every error carries the reference's error code,
//! a message and a hint, because scripts written for `nvflare deploy prepare` match on them.

use std::fmt;

/// The reference's error codes. The exit code follows from the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgs,
    ConfigNotFound,
    InvalidConfig,
    InvalidKit,
    UnsupportedKit,
    DeployPrepareFailed,
    DuplicateTarget,
    OutputLocked,
    OutputStaged,
    KubectlNotFound,
    KubectlFailed,
    PluginNotExecutable,
    PluginProtocol,
    PluginFailed,
    PluginTimeout,
    PluginWroteOutside,
    VerifyMismatch,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgs => "INVALID_ARGS",
            ErrorCode::ConfigNotFound => "CONFIG_NOT_FOUND",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::InvalidKit => "INVALID_KIT",
            ErrorCode::UnsupportedKit => "UNSUPPORTED_KIT",
            ErrorCode::DeployPrepareFailed => "DEPLOY_PREPARE_FAILED",
            ErrorCode::DuplicateTarget => "DUPLICATE_TARGET",
            ErrorCode::OutputLocked => "OUTPUT_LOCKED",
            ErrorCode::OutputStaged => "OUTPUT_STAGED",
            ErrorCode::KubectlNotFound => "KUBECTL_NOT_FOUND",
            ErrorCode::KubectlFailed => "KUBECTL_FAILED",
            ErrorCode::PluginNotExecutable => "PLUGIN_NOT_EXECUTABLE",
            ErrorCode::PluginProtocol => "PLUGIN_PROTOCOL_ERROR",
            ErrorCode::PluginFailed => "PLUGIN_FAILED",
            ErrorCode::PluginTimeout => "PLUGIN_TIMEOUT",
            ErrorCode::PluginWroteOutside => "PLUGIN_WROTE_OUTSIDE",
            ErrorCode::VerifyMismatch => "VERIFY_MISMATCH",
            ErrorCode::Internal => "INTERNAL_ERROR",
        }
    }

    /// 4 for anything the user can fix, 5 for bugs (and for a binary that links two
    /// targets of one name, which no input can fix).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::Internal | ErrorCode::DuplicateTarget => 5,
            _ => 4,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure reported to the user: code, message and hint, exactly as printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub hint: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn invalid_args(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgs, message, hint)
    }

    pub fn invalid_config(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidConfig, message, hint)
    }

    pub fn invalid_kit(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidKit, message, hint)
    }

    /// An I/O or other unexpected failure while building the prepared copy.
    pub fn prepare_failed(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::DeployPrepareFailed,
            format!("Failed to prepare deployment: {detail}"),
            "Check the kit and runtime config.",
        )
    }

    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::Internal,
            format!("An unexpected error occurred. \u{2014} {detail}"),
            "This is likely a bug. Re-run in a development environment for a traceback, or report the issue.",
        )
    }

    pub fn exit_code(&self) -> i32 {
        self.code.exit_code()
    }
}

/// An I/O failure on `path` while building the prepared copy.
pub(crate) fn io_error(path: &std::path::Path, err: std::io::Error) -> Error {
    Error::prepare_failed(format_args!("{}: {err}", path.display()))
}

/// Shorthand for the many config type errors that share the reference's hint.
pub(crate) const FIX_CONFIG_HINT: &str = "Fix the runtime config.";
