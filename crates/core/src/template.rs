//! Text templates rendered from JSON: a `command` agent's arguments (and, later, an `llm`
//! agent's prompt).
//!
//! The syntax is Jinja2's, by MiniJinja: `{{ input.path }}`, `{{ input.n + 1 }}`,
//! `{% if input.verbose %}-v{% endif %}`, filters such as `{{ input.name | upper }}`. Three
//! rules make templates safe to fill with task input:
//! - an undefined value is an error, not an empty string (`{{ input.typo }}` fails
//!   instead of running a program with a missing argument); only as a condition is it
//!   false, so `{% if input.verbose %}-v{% endif %}` serves optional flags;
//! - a string renders as its text and every other value as JSON (an object is
//!   `{"a":1}`, `null` is `null`), never escaped for HTML;
//! - a template and its output are bounded in size, and a render in work (fuel), so no
//!   input can make one loop or allocate without end.

use std::fmt::Write as _;

use minijinja::value::{Serde, ValueKind};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

/// Longest template source, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 << 10;
/// Longest output of one render, in bytes.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;
/// The work one render may do: about this many instructions, or 64 bytes each of data
/// (see MiniJinja's `set_fuel`); comfortably above [`MAX_RENDERED_BYTES`].
const FUEL: u64 = 200_000;

/// Why a template did not check or render. The message names the template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{name} is {len} bytes long; the most is {MAX_TEMPLATE_BYTES}")]
    TooLong { name: String, len: usize },
    #[error("{name} is not a valid template: {detail}")]
    Syntax { name: String, detail: String },
    /// The template uses a value the context does not have (`{{ input.typo }}`).
    #[error(
        "{name} uses a value that is not defined ({detail}); check the names it uses against the task input"
    )]
    Undefined { name: String, detail: String },
    #[error("{name} rendered more than {MAX_RENDERED_BYTES} bytes")]
    OutputTooLarge { name: String },
    #[error("{name} did more work than a template may (a very long loop?)")]
    TooMuchWork { name: String },
    #[error("{name} could not be rendered: {detail}")]
    Render { name: String, detail: String },
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_fuel(Some(FUEL));
    env.set_formatter(|out, state, value| match value.kind() {
        ValueKind::Number | ValueKind::Bool | ValueKind::None | ValueKind::Seq | ValueKind::Map => {
            let json = serde_json::to_string(value)
                .map_err(|e| minijinja::Error::new(ErrorKind::BadSerialization, e.to_string()))?;
            out.write_str(&json)
                .map_err(|_| minijinja::Error::from(ErrorKind::WriteFailure))
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
}

fn shared() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(environment)
}

fn check_len(name: &str, source: &str) -> Result<(), TemplateError> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::TooLong {
            name: name.to_owned(),
            len: source.len(),
        });
    }
    Ok(())
}

/// Checks that `source` parses (at registration, before any task runs). `name` says
/// where it is, e.g. `config.args[1]`.
pub fn check(name: &str, source: &str) -> Result<(), TemplateError> {
    check_len(name, source)?;
    shared()
        .template_from_named_str(name, source)
        .map(|_| ())
        .map_err(|e| TemplateError::Syntax {
            name: name.to_owned(),
            detail: detail(&e),
        })
}

/// Renders `source` with the JSON object `context` (its keys are the template's
/// variables).
pub fn render(name: &str, source: &str, context: &Value) -> Result<String, TemplateError> {
    check_len(name, source)?;
    let env = shared();
    let template =
        env.template_from_named_str(name, source)
            .map_err(|e| TemplateError::Syntax {
                name: name.to_owned(),
                detail: detail(&e),
            })?;
    let rendered = template
        .render(minijinja::Value::from(Serde(context)))
        .map_err(|e| match e.kind() {
            ErrorKind::UndefinedError => TemplateError::Undefined {
                name: name.to_owned(),
                detail: detail(&e),
            },
            ErrorKind::OutOfFuel => TemplateError::TooMuchWork {
                name: name.to_owned(),
            },
            _ => TemplateError::Render {
                name: name.to_owned(),
                detail: detail(&e),
            },
        })?;
    if rendered.len() > MAX_RENDERED_BYTES {
        return Err(TemplateError::OutputTooLarge {
            name: name.to_owned(),
        });
    }
    Ok(rendered)
}

/// MiniJinja's message without the template name (the caller's message has it).
fn detail(e: &minijinja::Error) -> String {
    let kind = e.kind().to_string();
    let mut text = match e.detail() {
        Some(d) => format!("{kind}: {d}"),
        None => kind,
    };
    if let Some(line) = e.line() {
        let _ = write!(text, " on line {line}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({"input": {"path": "/tmp/a b.txt", "n": 3, "flag": true, "none": null,
            "obj": {"b": 1, "a": [1, "x"]}, "list": ["p", "q"]}})
    }

    #[test]
    fn strings_render_as_text_and_other_values_as_json() {
        let r = |s: &str| render("t", s, &ctx()).unwrap();
        assert_eq!(r("{{ input.path }}"), "/tmp/a b.txt");
        assert_eq!(r("--n={{ input.n + 1 }}"), "--n=4");
        assert_eq!(r("{{ input.flag }}"), "true");
        assert_eq!(r("{{ input.none }}"), "null");
        assert_eq!(r("{{ input.obj }}"), r#"{"b":1,"a":[1,"x"]}"#);
        assert_eq!(r("{{ input.list }}"), r#"["p","q"]"#);
        assert_eq!(r("{{ input.path | upper }}"), "/TMP/A B.TXT");
        assert_eq!(r("{% if input.flag %}-v{% endif %}"), "-v");
        assert_eq!(r("<{{ '&' }}>"), "<&>", "never HTML-escaped");
        assert_eq!(r("plain"), "plain");
    }

    #[test]
    fn an_undefined_value_is_an_error() {
        let e = render("config.args[1]", "{{ input.missing }}", &ctx()).unwrap_err();
        assert!(matches!(e, TemplateError::Undefined { .. }), "{e:?}");
        let message = e.to_string();
        assert!(message.contains("config.args[1]"), "{message}");
        assert!(message.contains("not defined"), "{message}");
        let e = render("t", "{{ nothing.at.all }}", &ctx()).unwrap_err();
        assert!(matches!(e, TemplateError::Undefined { .. }), "{e:?}");
        // Asking is fine, and so is a condition.
        assert_eq!(
            render("t", "{% if input.missing %}-m{% endif %}", &ctx()).unwrap(),
            ""
        );
        assert_eq!(
            render("t", "{{ input.missing is defined }}", &ctx()).unwrap(),
            "false"
        );
        assert_eq!(
            render("t", "{{ input.missing | default('d') }}", &ctx()).unwrap(),
            "d"
        );
    }

    #[test]
    fn bad_syntax_is_found_by_check() {
        let e = check("config.args[0]", "{{ input.path ").unwrap_err();
        assert!(matches!(e, TemplateError::Syntax { .. }), "{e:?}");
        assert!(e.to_string().contains("config.args[0]"), "{e}");
        assert!(check("a", "{{ input.path }} {% if x %}y{% endif %}").is_ok());
        // Undefined names are only known when rendering.
        assert!(check("a", "{{ whatever }}").is_ok());
    }

    #[test]
    fn sizes_and_work_are_bounded() {
        let long = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(matches!(
            check("t", &long),
            Err(TemplateError::TooLong { .. })
        ));
        let e = render(
            "t",
            "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}",
            &ctx(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                TemplateError::OutputTooLarge { .. } | TemplateError::TooMuchWork { .. }
            ),
            "{e:?}"
        );
        let e = render(
            "t",
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            &ctx(),
        )
        .unwrap_err();
        assert!(matches!(e, TemplateError::TooMuchWork { .. }), "{e:?}");
        let e = render("t", "{{ 'x' * 2000000 }}", &ctx()).unwrap_err();
        assert!(matches!(e, TemplateError::OutputTooLarge { .. }), "{e:?}");
    }
}
