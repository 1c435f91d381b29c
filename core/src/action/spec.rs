//! What a target declares about an action: its name, help and options, and the
//! `--schema` description built from them.

use serde_json::{json, Map, Value};

use super::RESERVED_OPTIONS;

/// One option of an action: `--<name> <VALUE>`, or a switch `--<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOption {
    /// Without the dashes: `namespace` is `--namespace`.
    pub name: String,
    /// One line of help.
    pub help: String,
    /// Shown in help for the value (`NS`); `None` makes the option a switch.
    pub value_name: Option<String>,
    /// The documented values, shown in help and the schema. The action checks the value
    /// itself, so that a value from the environment gets the same message.
    pub choices: Vec<String>,
}

impl ActionOption {
    pub fn value(name: &str, value_name: &str, help: &str) -> Self {
        ActionOption {
            name: name.to_string(),
            help: help.to_string(),
            value_name: Some(value_name.to_string()),
            choices: Vec::new(),
        }
    }

    pub fn switch(name: &str, help: &str) -> Self {
        ActionOption {
            name: name.to_string(),
            help: help.to_string(),
            value_name: None,
            choices: Vec::new(),
        }
    }

    pub fn with_choices(mut self, choices: &[&str]) -> Self {
        self.choices = choices.iter().map(|c| c.to_string()).collect();
        self
    }

    pub fn is_switch(&self) -> bool {
        self.value_name.is_none()
    }
}

/// An action a target declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSpec {
    /// The verb: `stage`.
    pub name: String,
    /// One line for listings.
    pub summary: String,
    /// The help text's description.
    pub description: String,
    /// Help of the positional `KIT` (and `--kit`).
    pub kit_help: String,
    pub options: Vec<ActionOption>,
    /// Command lines shown in help and the schema.
    pub examples: Vec<String>,
    /// Whether the action changes files of the prepared output: it then holds the
    /// output's lock while it runs, its changes are recorded in the output's receipt, and
    /// a plugin's action may write below the output (nothing else).
    pub writes_kit: bool,
}

impl ActionSpec {
    pub fn new(name: &str, summary: &str, description: &str) -> Self {
        ActionSpec {
            name: name.to_string(),
            summary: summary.to_string(),
            description: description.to_string(),
            kit_help: "Prepared kit directory (an output of flare-deploy prepare).".to_string(),
            options: Vec::new(),
            examples: Vec::new(),
            writes_kit: false,
        }
    }

    pub fn kit_help(mut self, help: &str) -> Self {
        self.kit_help = help.to_string();
        self
    }

    pub fn option(mut self, option: ActionOption) -> Self {
        self.options.push(option);
        self
    }

    pub fn options(mut self, options: impl IntoIterator<Item = ActionOption>) -> Self {
        self.options.extend(options);
        self
    }

    pub fn examples(mut self, examples: &[&str]) -> Self {
        self.examples = examples.iter().map(|e| e.to_string()).collect();
        self
    }

    pub fn writes_kit(mut self) -> Self {
        self.writes_kit = true;
        self
    }

    /// Refuses a spec the command line could not offer: a name or option that is not a
    /// lower-case word, a reserved or repeated option.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !is_word(&self.name) {
            return Err(format!("action name {:?} is not a lower-case word", self.name));
        }
        let mut seen: Vec<&str> = Vec::new();
        for option in &self.options {
            if !is_word(&option.name) {
                return Err(format!(
                    "option {:?} of action '{}' is not a lower-case word",
                    option.name, self.name
                ));
            }
            if RESERVED_OPTIONS.contains(&option.name.as_str()) || seen.contains(&option.name.as_str()) {
                return Err(format!(
                    "option --{} of action '{}' is reserved or repeated",
                    option.name, self.name
                ));
            }
            seen.push(&option.name);
        }
        Ok(())
    }

    /// `--schema`: the machine-readable description of the command's arguments, in the
    /// form `prepare --schema` (and the reference) prints.
    pub fn schema(&self, runtime: &str) -> Value {
        let mut args = vec![
            json!({"name": "kit", "type": "string", "required": false, "description": self.kit_help,
                   "default": null, "nargs": "?"}),
            json!({"name": "--kit", "type": "string", "required": false, "description": self.kit_help,
                   "default": null}),
        ];
        for option in &self.options {
            let mut arg = Map::new();
            arg.insert("name".into(), format!("--{}", option.name).into());
            let (kind, default) = match option.is_switch() {
                true => ("boolean", Value::Bool(false)),
                false => ("string", Value::Null),
            };
            arg.insert("type".into(), kind.into());
            arg.insert("required".into(), false.into());
            arg.insert("description".into(), option.help.clone().into());
            arg.insert("default".into(), default);
            if !option.choices.is_empty() {
                arg.insert("choices".into(), option.choices.clone().into());
            }
            args.push(Value::Object(arg));
        }
        args.push(json!({"name": "--schema", "type": "boolean", "required": false,
                         "description": "print command schema as JSON and exit", "default": false}));
        json!({
            "schema_version": "1",
            "command": format!("flare-deploy {runtime} {}", self.name),
            "description": self.description,
            "args": args,
            "examples": self.examples,
        })
    }

    /// The spec as listed by `targets show --format json`.
    pub fn to_json(&self) -> Value {
        let options: Vec<Value> = self
            .options
            .iter()
            .map(|o| json!({"name": o.name, "help": o.help, "value_name": o.value_name, "choices": o.choices}))
            .collect();
        json!({"name": self.name, "summary": self.summary, "description": self.description,
               "kit_help": self.kit_help, "options": options, "examples": self.examples,
               "writes_kit": self.writes_kit})
    }
}

fn is_word(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
}
