//! Compiles `proto/**/*.proto` with protox (pure Rust: no `protoc` binary needed) and generates prost types
//! that also carry serde attributes for Go-`encoding/json`-compatible REST bodies.
//!
//! For every message outside the wrapper package `openim.protobuf`:
//! - `#[derive(Serialize, Deserialize)] #[serde(default)]` (a missing key means the field's default);
//! - per field, `#[serde(rename = "<proto name>")]` (Go uses the `.proto` names verbatim), plus an `alias` with
//!   the first letter lowercased where that differs (`Msgs` / `msgs`);
//! - per field, `deserialize_with = "crate::gojson::null_default"` (JSON `null` means the default, as Go sends
//!   `null` for nil slices, maps and pointers), or for `bytes` fields `with = "crate::gojson::base64_bytes"`.
//!
//! The wrapper messages (`StringValue`, …) get no derive here: they are (de)serialized as bare scalars by
//! hand-written impls in `src/gojson.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use protox::prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
use protox::prost_reflect::prost_types::{DescriptorProto, FileDescriptorSet};

/// The package whose messages are JSON scalars, not objects.
const WRAPPER_PACKAGE: &str = "openim.protobuf";

const MESSAGE_ATTRS: &str = "#[derive(::serde::Serialize, ::serde::Deserialize)]\n#[serde(default)]";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;

    let mut config = prost_build::Config::new();
    configure_serde(&mut config, &fds)?;
    config.compile_fds(fds)?;
    tidy_generated(Path::new(&std::env::var("OUT_DIR")?))?;
    Ok(())
}

/// prost snake-cases `userIDs` as `user_i_ds` and `iOSPushSound` as `i_os_push_sound`. Rewrite such identifiers
/// in the generated code (`user_ids`, `ios_push_sound`) by merging a lone `i` segment with the segment after it.
/// The wire tags and the serde names are unaffected: they come from attributes, not from identifiers.
fn tidy_generated(out_dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(out_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            let src = std::fs::read_to_string(&path)?;
            std::fs::write(&path, tidy_identifiers(&src))?;
        }
    }
    Ok(())
}

fn tidy_identifiers(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut ident = String::new();
    let flush = |ident: &mut String, out: &mut String| {
        if ident.contains('_') && !ident.chars().any(|c| c.is_ascii_uppercase()) {
            let parts: Vec<&str> = ident.split('_').collect();
            let mut merged: Vec<String> = Vec::with_capacity(parts.len());
            let mut i = 0;
            while i < parts.len() {
                if parts[i] == "i" && i + 1 < parts.len() && !parts[i + 1].is_empty() {
                    merged.push(format!("i{}", parts[i + 1]));
                    i += 2;
                } else {
                    merged.push(parts[i].to_owned());
                    i += 1;
                }
            }
            out.push_str(&merged.join("_"));
        } else {
            out.push_str(ident);
        }
        ident.clear();
    };
    for c in src.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            ident.push(c);
        } else {
            flush(&mut ident, &mut out);
            out.push(c);
        }
    }
    flush(&mut ident, &mut out);
    out
}

fn configure_serde(config: &mut prost_build::Config, fds: &FileDescriptorSet) -> Result<(), String> {
    let mut packages = BTreeSet::new();
    for file in &fds.file {
        let package = file.package();
        if package == WRAPPER_PACKAGE {
            continue;
        }
        packages.insert(package.to_owned());
        for message in &file.message_type {
            configure_message(config, &format!(".{package}"), message)?;
        }
    }
    // One matcher per package: prost-build matches type paths by prefix, so a per-message attribute would also
    // land on nested messages and derive twice.
    for package in packages {
        config.message_attribute(format!(".{package}"), MESSAGE_ATTRS);
    }
    Ok(())
}

fn configure_message(config: &mut prost_build::Config, scope: &str, message: &DescriptorProto) -> Result<(), String> {
    let path = format!("{scope}.{}", message.name());
    if message.options.as_ref().is_some_and(|o| o.map_entry()) {
        return Ok(());
    }
    let names: BTreeSet<&str> = message.field.iter().map(|f| f.name()).collect();
    for field in &message.field {
        let name = field.name();
        if field.oneof_index.is_some() && !field.proto3_optional() {
            return Err(format!("{path}.{name}: oneofs are not supported by the Go-JSON serde mapping"));
        }
        let mut attr = format!("#[serde(rename = \"{name}\"");
        let alias = lower_first(name);
        if alias != name && !names.contains(alias.as_str()) {
            attr.push_str(&format!(", alias = \"{alias}\""));
        }
        let repeated = field.label() == Label::Repeated;
        if field.r#type() == Type::Bytes {
            if field.proto3_optional() {
                return Err(format!("{path}.{name}: optional bytes is not supported"));
            }
            let helper = if repeated { "base64_bytes_list" } else { "base64_bytes" };
            attr.push_str(&format!(", with = \"crate::gojson::{helper}\""));
        } else if repeated && is_map_with_bytes_value(message, field.type_name()) {
            return Err(format!("{path}.{name}: map with bytes values is not supported"));
        } else {
            attr.push_str(", deserialize_with = \"crate::gojson::null_default\"");
        }
        attr.push_str(")]");
        config.field_attribute(format!("{path}.{name}"), attr);
    }
    for nested in &message.nested_type {
        configure_message(config, &path, nested)?;
    }
    Ok(())
}

/// Whether `type_name` names one of `message`'s map-entry types whose value is `bytes`.
fn is_map_with_bytes_value(message: &DescriptorProto, type_name: &str) -> bool {
    let Some(entry_name) = type_name.rsplit('.').next() else {
        return false;
    };
    message.nested_type.iter().any(|n| {
        n.name() == entry_name
            && n.options.as_ref().is_some_and(|o| o.map_entry())
            && n.field.iter().any(|f| f.name() == "value" && f.r#type() == Type::Bytes)
    })
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
