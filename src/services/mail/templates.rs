//! Mail templates: a tiny, pure template language.
//!
//! - `{{ name }}` is replaced by the value of `name` (HTML-escaped in the HTML part);
//! - `{{# name }} ... {{/ name }}` renders its content only when `name` is not empty;
//! - `{{^ name }} ... {{/ name }}` renders its content only when `name` is empty.
//!
//! A template is parsed once, when it is loaded, against the variables its mail kind
//! provides: an unknown name or a malformed tag is an error then, never at send time.

use super::kind::MailKind;

/// Variables every template gets, whatever its kind.
pub const COMMON_VARS: &[&str] = &["email", "display_name", "product_name"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{template}: {message}")]
pub struct TemplateError {
    /// The template's file name, such as `verify_email.html`.
    pub template: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Var(String),
    /// Content rendered when the variable is non-empty (`inverted`: when it is empty).
    Section {
        name: String,
        inverted: bool,
        body: Vec<Node>,
    },
}

/// How values are written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    None,
    Html,
}

/// One parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `source`; every name it uses must be in `allowed`. `name` labels errors.
    pub fn parse(name: &str, source: &str, allowed: &[&str]) -> Result<Self, TemplateError> {
        let err = |message: String| TemplateError {
            template: name.to_owned(),
            message,
        };
        // Stack of open sections: (name, inverted, nodes before the section).
        let mut stack: Vec<(String, bool, Vec<Node>)> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                nodes.push(Node::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(err("a `{{` is never closed by `}}`".into()));
            };
            let tag = after[..end].trim();
            rest = &after[end + 2..];
            let (sigil, ident) = match tag.chars().next() {
                Some(c @ ('#' | '^' | '/')) => (Some(c), tag[1..].trim()),
                _ => (None, tag),
            };
            let valid_ident = !ident.is_empty()
                && ident
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid_ident {
                return Err(err(format!("`{{{{{tag}}}}}` is not a valid placeholder")));
            }
            if !allowed.contains(&ident) {
                return Err(err(format!(
                    "unknown placeholder `{ident}` (this template can use: {})",
                    allowed.join(", ")
                )));
            }
            match sigil {
                None => nodes.push(Node::Var(ident.to_owned())),
                Some(open @ ('#' | '^')) => {
                    stack.push((ident.to_owned(), open == '^', std::mem::take(&mut nodes)));
                }
                Some(_) => {
                    let Some((open, inverted, outer)) = stack.pop() else {
                        return Err(err(format!("`{{{{/{ident}}}}}` closes no section")));
                    };
                    if open != ident {
                        return Err(err(format!(
                            "`{{{{/{ident}}}}}` closes the section `{open}`"
                        )));
                    }
                    let body = std::mem::replace(&mut nodes, outer);
                    nodes.push(Node::Section {
                        name: open,
                        inverted,
                        body,
                    });
                }
            }
        }
        if let Some((open, _, _)) = stack.last() {
            return Err(err(format!("the section `{open}` is never closed")));
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_owned()));
        }
        Ok(Self { nodes })
    }

    /// Renders with `value` (a missing variable renders as empty).
    pub fn render<'v>(&self, value: &dyn Fn(&str) -> Option<&'v str>, escape: Escape) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, value, escape, &mut out);
        out
    }
}

fn render_nodes<'v>(
    nodes: &[Node],
    value: &dyn Fn(&str) -> Option<&'v str>,
    escape: Escape,
    out: &mut String,
) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Var(name) => {
                let v = value(name).unwrap_or_default();
                match escape {
                    Escape::None => out.push_str(v),
                    Escape::Html => push_html_escaped(v, out),
                }
            }
            Node::Section {
                name,
                inverted,
                body,
            } => {
                let present = value(name).is_some_and(|v| !v.is_empty());
                if present != *inverted {
                    render_nodes(body, value, escape, out);
                }
            }
        }
    }
}

fn push_html_escaped(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The three parts of one kind's message.
#[derive(Debug, Clone)]
pub struct KindTemplates {
    pub subject: Template,
    pub text: Template,
    pub html: Template,
}

/// The template sources of one kind, as loaded (built in or an operator's file).
#[derive(Debug, Clone)]
pub struct TemplateSources {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A template for every mail kind.
#[derive(Debug, Clone)]
pub struct MailTemplates {
    kinds: Vec<(MailKind, KindTemplates)>,
}

impl MailTemplates {
    /// Parses the sources of every kind; `sources` must cover each kind.
    pub fn parse(sources: &dyn Fn(MailKind) -> TemplateSources) -> Result<Self, TemplateError> {
        let mut kinds = Vec::with_capacity(MailKind::ALL.len());
        for kind in MailKind::ALL {
            let src = sources(kind);
            let allowed: Vec<&str> = COMMON_VARS.iter().chain(kind.vars()).copied().collect();
            let base = kind.template_name();
            let parsed = KindTemplates {
                subject: Template::parse(&format!("{base}.subject"), &src.subject, &allowed)?,
                text: Template::parse(&format!("{base}.txt"), &src.text, &allowed)?,
                html: Template::parse(&format!("{base}.html"), &src.html, &allowed)?,
            };
            kinds.push((kind, parsed));
        }
        let templates = Self { kinds };
        templates.check_renders()?;
        Ok(templates)
    }

    /// Renders every template with dummy values, so a template that renders an empty subject
    /// is caught at load.
    fn check_renders(&self) -> Result<(), TemplateError> {
        for (kind, t) in &self.kinds {
            let dummy = |_: &str| Some("x");
            let subject = t.subject.render(&dummy, Escape::None);
            if subject.trim().is_empty() {
                return Err(TemplateError {
                    template: format!("{}.subject", kind.template_name()),
                    message: "renders an empty subject".into(),
                });
            }
        }
        Ok(())
    }

    pub fn get(&self, kind: MailKind) -> Option<&KindTemplates> {
        self.kinds.iter().find(|(k, _)| *k == kind).map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn placeholders_render_and_are_escaped_only_in_html() {
        let t = Template::parse("t", "Hi {{ name }}, {{link}}!", &["name", "link"])
            .unwrap_or_else(|e| panic!("{e}"));
        let v = values(&[("name", "<b>&\"'"), ("link", "https://x/?a=1&b=2")]);
        assert_eq!(
            t.render(&v, Escape::None),
            "Hi <b>&\"', https://x/?a=1&b=2!"
        );
        assert_eq!(
            t.render(&v, Escape::Html),
            "Hi &lt;b&gt;&amp;&quot;&#39;, https://x/?a=1&amp;b=2!"
        );
    }

    #[test]
    fn sections_render_on_presence_and_inverted_sections_on_absence() {
        let t = Template::parse(
            "t",
            "Hello{{# name }} {{ name }}{{/ name }}{{^name}} there{{/name}}.",
            &["name"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.render(&values(&[("name", "Ann")]), Escape::None),
            "Hello Ann."
        );
        assert_eq!(
            t.render(&values(&[("name", "")]), Escape::None),
            "Hello there."
        );
        assert_eq!(t.render(&values(&[]), Escape::None), "Hello there.");
    }

    #[test]
    fn unknown_or_malformed_placeholders_are_errors() {
        for bad in [
            "{{ nope }}",
            "{{ name",
            "{{ }}",
            "{{ Name }}",
            "{{#name}}x",
            "{{/name}}",
            "{{#name}}{{/link}}",
        ] {
            let e = Template::parse("f.txt", bad, &["name", "link"]);
            assert!(e.is_err(), "{bad:?}");
            assert!(e
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .starts_with("f.txt: "));
        }
    }
}
