//! The app's HTML: one page, signed in or signed out, like the sidebar of the
//! ArcGIS "authorization code flow" sample (a sign-in button, a sign-out
//! button, and "Welcome, {user}." in `#user-info`).

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(text)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n\
         <style>body{{font-family:sans-serif;max-width:40em;margin:3em auto}}\
         .hide{{display:none}}</style>\n</head>\n<body>\n<h1>ArcGIS sign-in example</h1>\n{body}\n</body>\n</html>\n",
        title = escape(title)
    )
}

/// The page for a visitor who is not signed in.
pub(crate) fn signed_out(portal: &str) -> String {
    page(
        "Signed out",
        &format!(
            "<p id=\"status\">You are not signed in.</p>\n\
             <form method=\"post\" action=\"/signin\">\
             <button id=\"sign-in\" type=\"submit\">Sign in with ArcGIS</button></form>\n\
             <p>You will sign in at <code>{}</code>.</p>",
            escape(portal)
        ),
    )
}

/// The page for a signed-in user.
pub(crate) fn signed_in(display_name: &str, username: &str) -> String {
    page(
        "Signed in",
        &format!(
            "<p id=\"user-info\">Welcome, {}.</p>\n\
             <p>Signed in as <code id=\"username\">{}</code>.</p>\n\
             <form method=\"post\" action=\"/signout\">\
             <button id=\"sign-out\" type=\"submit\">Sign out</button></form>",
            escape(display_name),
            escape(username)
        ),
    )
}

/// A page saying what went wrong, with a way back.
pub(crate) fn problem(message: &str) -> String {
    page(
        "Sign-in problem",
        &format!(
            "<p id=\"problem\">{}</p>\n<p><a id=\"home\" href=\"/\">Back to the start</a></p>",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        let html = signed_in("<script>x</script>", "a&b");
        assert!(html.contains("Welcome, &lt;script&gt;x&lt;/script&gt;."));
        assert!(html.contains("a&amp;b"));
    }
}
