//! The one Lambda binary: the function's handler (`_HANDLER`, the template's
//! `Handler`) says which of the four Lambdas this process is.
// The start path's futures nest deeper than rustc's default layout limit in release builds.
#![recursion_limit = "256"]

use sfn_singleton::lambda::{Role, run};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sfn_singleton::lambda::init_logging();
    let role = Role::from_env().inspect_err(|e| tracing::error!(error = %e, "no such Lambda"))?;
    run(role).await
}
