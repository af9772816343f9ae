//! RFC 8707 resource indicators. Clients name the resource a token is for; they spell it
//! differently (Claude Code has sent a trailing slash, some send nothing, some the server's
//! origin), so the value is normalised before it is compared. Anything that is not this
//! server's MCP endpoint is refused: a token is only ever valid here.

use url::Url;

use super::{OAuthError, mcp_resource};

/// The canonical resource for a request's `resource` parameter: this server's MCP URL when
/// absent or when it names this server (`/mcp`, `/mcp/`, or the bare origin), `invalid_target`
/// otherwise.
pub fn check(requested: Option<&str>, public_url: &Url) -> Result<String, OAuthError> {
    let canonical = mcp_resource(public_url);
    let Some(raw) = requested.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(canonical);
    };
    let foreign = || {
        OAuthError::invalid_target(format!(
            "This authorization server issues tokens only for {canonical}; `{raw}` is another resource."
        ))
    };
    let url = Url::parse(raw).map_err(|_| {
        OAuthError::invalid_target(format!("`{raw}` is not an absolute URL (RFC 8707)."))
    })?;
    if url.fragment().is_some() {
        return Err(OAuthError::invalid_target(
            "A resource indicator must not contain a fragment (RFC 8707).",
        ));
    }
    let ours = Url::parse(&canonical).map_err(OAuthError::server_error)?;
    let same_origin = url.scheme() == ours.scheme()
        && url.host_str() == ours.host_str()
        && url.port_or_known_default() == ours.port_or_known_default();
    let path = url.path().trim_end_matches('/');
    if same_origin && url.query().is_none() && (path == "/mcp" || path.is_empty()) {
        Ok(canonical)
    } else {
        Err(foreign())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> Url {
        Url::parse("https://qbo.example.com").unwrap()
    }

    #[test]
    fn spellings_of_this_server_normalise() {
        for ok in [
            None,
            Some(""),
            Some("https://qbo.example.com/mcp"),
            Some("https://qbo.example.com/mcp/"),
            Some("https://QBO.example.com:443/mcp"),
            Some("https://qbo.example.com"),
            Some("https://qbo.example.com/"),
        ] {
            assert_eq!(
                check(ok, &public()).unwrap(),
                "https://qbo.example.com/mcp",
                "{ok:?}"
            );
        }
    }

    #[test]
    fn other_resources_are_refused() {
        for bad in [
            "https://evil.example.com/mcp",
            "http://qbo.example.com/mcp",
            "https://qbo.example.com:8443/mcp",
            "https://qbo.example.com/other",
            "https://qbo.example.com/mcp?x=1",
            "https://qbo.example.com/mcp#frag",
            "not a url",
        ] {
            let err = check(Some(bad), &public()).unwrap_err();
            assert_eq!(err.error, "invalid_target", "{bad}");
        }
    }
}
