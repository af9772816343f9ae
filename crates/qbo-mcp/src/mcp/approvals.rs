//! Where the tools meet approvals (docs/tools.md, "Approvals"): [`hold`] is what every write
//! tool asks before sending (`proposals::intercept` decides), and `get_proposal` lets the
//! proposer's assistant follow a proposal up.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::books::explain_error;
use super::tools::{ToolContext, ToolError, ToolOutcome, ToolOutput};
use crate::proposals::{self, Proposer};
use crate::quickbooks::Company;
use crate::quickbooks::operations::Write;

/// `Some(answer)` when the company's approval policy holds `write`: the tool answers
/// `{"status": "pending_approval", "proposal_id", "preview"}` and nothing is sent. `None`:
/// send as usual.
pub async fn hold(
    cx: &ToolContext,
    company: &Company,
    tool: &str,
    write: Write,
) -> Result<Option<ToolOutput>, ToolError> {
    let proposer = Proposer {
        person: &cx.caller.person,
        assistant: &cx.caller.assistant.label(),
    };
    let held = proposals::intercept(&cx.state, proposer, company, tool, &write).await;
    let held = match held {
        Ok(held) => held,
        Err(e) => return Err(explain_error(cx, e).await),
    };
    let Some(held) = held else {
        return Ok(None);
    };
    Ok(Some(ToolOutput {
        summary: format!(
            "Nothing was sent: {}'s approval policy holds this write as proposal {} until an admin other than you approves it. Follow it with get_proposal.",
            company.name, held.proposal_id
        ),
        data: json!({
            "status": "pending_approval",
            "proposal_id": held.proposal_id,
            "preview": held.preview,
            "amount": held.amount,
        }),
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalArgs {
    /// The `proposal_id` a write tool answered with.
    pub proposal_id: String,
}

/// `get_proposal`: a proposal the caller made (admins: any), with its status, the decision
/// and note, and QuickBooks' result once executed.
pub async fn get_proposal(cx: &ToolContext, args: ProposalArgs) -> ToolOutcome {
    let unknown = || {
        ToolError(format!(
            "There is no proposal `{}` of yours.",
            args.proposal_id
        ))
    };
    let found = proposals::store::get(&cx.state.db, args.proposal_id.trim())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read a proposal");
            ToolError("The proposal cannot be read right now; try again in a moment.".into())
        })?;
    let p = found
        .filter(|p| proposals::may_see(&cx.caller.person, p))
        .ok_or_else(unknown)?;
    let summary = match (&p.decided_by, &p.note) {
        (Some(by), Some(note)) => {
            format!("Proposal {} is {} ({by}: {note}).", p.id, p.status.as_str())
        }
        (Some(by), None) => format!("Proposal {} is {} ({by}).", p.id, p.status.as_str()),
        _ => format!("Proposal {} is {}.", p.id, p.status.as_str()),
    };
    Ok(ToolOutput {
        summary,
        data: json!(p),
    })
}
