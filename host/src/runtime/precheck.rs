//! A structural look at a module before anything expensive happens to it.
//!
//! Compiling is the costliest thing an upload can ask for: Cranelift's time and memory grow
//! with the number of functions and the size of their bodies, not with the file's size (a
//! 400 KB core module of 100,000 empty functions compiles for seconds and takes hundreds of
//! megabytes). So every upload is first walked section by section with `wasmparser`, without
//! validating or compiling anything (milliseconds even for a 20 MB interpreter), and refused
//! with the reason when its shape is beyond what the host compiles, or when it cannot be an
//! extension at all (no `_start`, `handle` or `wasi:cli/run`, or an import the host does not
//! provide). What passes gets a
//! [`ModuleShape`] whose [`ModuleShape::compile_weight`] decides whether the upload waits for
//! its compile or is compiled in the background.

use super::module::{Encoding, LoadError};

/// The largest shapes the host compiles. The defaults hold every guest this project builds
/// three times over (measured by `compile_bombs::every_example_passes_the_precheck_...`:
/// the largest are the interpreters, CPython in componentize-py with 13,354 functions and
/// 6.6 MB of code, StarlingMonkey in componentize-js with 12,705 functions and 9.2 MB of
/// code) and refuse what no extension needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleBounds {
    /// Functions defined, over every core module inside.
    pub max_functions: u64,
    /// Bytes of code (function bodies), over every core module inside.
    pub max_code_bytes: u64,
    /// Bytes of the largest single function body: Cranelift's cost grows faster than
    /// linearly with one function's size.
    pub max_function_bytes: u64,
    /// Core modules and components nested inside a component.
    pub max_nested: u64,
}

impl Default for ModuleBounds {
    fn default() -> Self {
        ModuleBounds {
            max_functions: 40_000,
            max_code_bytes: 32 * 1024 * 1024,
            max_function_bytes: 4 * 1024 * 1024,
            max_nested: 64,
        }
    }
}

/// What the walk found: enough to weigh the compile and to say why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModuleShape {
    /// Functions defined (not imported), over every core module inside.
    pub functions: u64,
    /// Bytes of function bodies.
    pub code_bytes: u64,
    /// Bytes of the largest function body: one huge function compiles slowly however few
    /// others there are, so it has a bound of its own.
    pub largest_function_bytes: u64,
    /// Core modules and components inside (0 for a core module).
    pub nested: u64,
}

/// What one function costs Cranelift beyond its bytes, in bytes of code: an empty function
/// took about 50 µs to compile (100,000 of them, 4.9 s), about as long as a quarter of a
/// kilobyte of ordinary body, so a weight counts either kind of cost alike.
const FUNCTION_WEIGHT: u64 = 256;

impl ModuleShape {
    /// The compile's cost in bytes of code: body bytes plus a fixed cost per function. The
    /// library compiles a module while its upload waits only when this is small.
    pub fn compile_weight(&self) -> u64 {
        self.code_bytes
            .saturating_add(self.functions.saturating_mul(FUNCTION_WEIGHT))
    }
}

/// The export that makes a core module callable.
const START_EXPORT: &str = "_start";
/// The exports that make a component callable.
const HANDLE_EXPORT: &str = "handle";
const RUN_EXPORT: &str = "wasi:cli/run@0.2.";

/// Walks `bytes` and refuses, with the reason, a module beyond `bounds` or one that cannot
/// be an extension. Never compiles, never validates bodies, never panics.
pub fn precheck(bytes: &[u8], bounds: &ModuleBounds) -> Result<ModuleShape, LoadError> {
    let encoding = super::module::encoding(bytes)?;
    let what = match encoding {
        Encoding::Core => "module",
        Encoding::Component => "component",
    };
    let malformed = |error: wasmparser::BinaryReaderError| LoadError::Invalid {
        encoding: what,
        reason: error.message().to_owned(),
    };
    let mut shape = ModuleShape::default();
    // How deep the parser is: 1 while in the top-level module or component.
    let mut depth = 0u32;
    let mut callable = false;
    // Functions counted before the current module began.
    let mut declared = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            wasmparser::Payload::Version { .. } => {
                depth += 1;
                declared = shape.functions;
                if depth > 1 {
                    shape.nested += 1;
                    over(
                        "nested modules and components",
                        shape.nested,
                        bounds.max_nested,
                    )?;
                }
            }
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::FunctionSection(functions) => {
                shape.functions += u64::from(functions.count());
                over("functions", shape.functions, bounds.max_functions)?;
            }
            wasmparser::Payload::CodeSectionStart { size, count, .. } => {
                // A malformed module may count more bodies than it declares functions;
                // whichever is larger is what a compile would face.
                shape.functions = shape
                    .functions
                    .max(declared.saturating_add(u64::from(count)));
                over("functions", shape.functions, bounds.max_functions)?;
                shape.code_bytes += u64::from(size);
                over("bytes of code", shape.code_bytes, bounds.max_code_bytes)?;
            }
            wasmparser::Payload::CodeSectionEntry(body) => {
                let size = body.range().len() as u64;
                shape.largest_function_bytes = shape.largest_function_bytes.max(size);
                over(
                    "bytes in one function",
                    shape.largest_function_bytes,
                    bounds.max_function_bytes,
                )?;
            }
            wasmparser::Payload::ImportSection(imports) if depth == 1 => {
                for group in imports {
                    let module = match group.map_err(malformed)? {
                        wasmparser::Imports::Single(_, import) => import.module,
                        wasmparser::Imports::Compact1 { module, .. }
                        | wasmparser::Imports::Compact2 { module, .. } => module,
                    };
                    if module != super::module::WASI_PREVIEW1 {
                        return Err(LoadError::UnsupportedImport {
                            name: format!("{module}::*"),
                        });
                    }
                }
            }
            wasmparser::Payload::ComponentImportSection(imports) if depth == 1 => {
                for import in imports {
                    let name = import.map_err(malformed)?.name.name;
                    // Plain names are the world's own types and functions, checked by the
                    // loader; interfaces (`package:name/interface`) must be the host's.
                    if name.contains(':') && !super::module::component_import_provided(name) {
                        return Err(LoadError::UnsupportedImport {
                            name: name.to_owned(),
                        });
                    }
                }
            }
            wasmparser::Payload::ExportSection(exports) if depth == 1 => {
                for export in exports {
                    callable |= export.map_err(malformed)?.name == START_EXPORT;
                }
            }
            wasmparser::Payload::ComponentExportSection(exports) if depth == 1 => {
                for export in exports {
                    let name = export.map_err(malformed)?.name.name;
                    callable |= name == HANDLE_EXPORT || name.starts_with(RUN_EXPORT);
                }
            }
            _ => {}
        }
    }
    if !callable {
        return Err(match encoding {
            Encoding::Core => LoadError::MissingExport {
                expected: "`_start` (a WASI command); a library module needs to be a component of world wasmhook:extension/extension",
                found: "is a core module that",
            },
            Encoding::Component => LoadError::MissingExport {
                expected:
                    "`handle` (world wasmhook:extension/extension) or `wasi:cli/run` (a WASI command)",
                found: "is a component that",
            },
        });
    }
    Ok(shape)
}

/// Refuses a count over its bound, naming both.
fn over(what: &'static str, count: u64, limit: u64) -> Result<(), LoadError> {
    if count > limit {
        return Err(LoadError::TooComplex { what, count, limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap_or_else(|error| panic!("bad test WAT: {error}"))
    }

    #[test]
    fn a_small_command_passes_with_its_shape() -> Result<(), LoadError> {
        let bytes = wat(r#"(module (func (export "_start")) (func) (func (nop)))"#);
        let shape = precheck(&bytes, &ModuleBounds::default())?;
        assert_eq!(shape.functions, 3);
        assert!(shape.code_bytes > 0);
        assert_eq!(shape.nested, 0);
        Ok(())
    }

    #[test]
    fn too_many_functions_are_refused_before_the_rest_is_read() {
        let functions = "(func)".repeat(11);
        let bytes = wat(&format!(r#"(module (func (export "_start")) {functions})"#));
        let bounds = ModuleBounds {
            max_functions: 10,
            ..ModuleBounds::default()
        };
        match precheck(&bytes, &bounds) {
            Err(LoadError::TooComplex { what, count, limit }) => {
                assert_eq!((what, count, limit), ("functions", 12, 10));
            }
            other => panic!("expected too many functions, got {other:?}"),
        }
    }

    #[test]
    fn a_large_function_and_much_code_are_refused() {
        let body = "(drop (i32.const 1))".repeat(200);
        let bytes = wat(&format!(r#"(module (func (export "_start") {body}))"#));
        let one = ModuleBounds {
            max_function_bytes: 100,
            ..ModuleBounds::default()
        };
        assert!(matches!(
            precheck(&bytes, &one),
            Err(LoadError::TooComplex {
                what: "bytes in one function",
                ..
            })
        ));
        let all = ModuleBounds {
            max_code_bytes: 100,
            ..ModuleBounds::default()
        };
        assert!(matches!(
            precheck(&bytes, &all),
            Err(LoadError::TooComplex {
                what: "bytes of code",
                ..
            })
        ));
    }

    #[test]
    fn a_module_nothing_can_call_is_refused_without_compiling() {
        let bytes = wat("(module (func) (func))");
        assert!(matches!(
            precheck(&bytes, &ModuleBounds::default()),
            Err(LoadError::MissingExport { .. })
        ));
    }

    #[test]
    fn an_import_the_host_does_not_provide_is_refused_without_compiling() {
        let bytes = wat(r#"(module (import "env" "f" (func)) (func (export "_start")))"#);
        match precheck(&bytes, &ModuleBounds::default()) {
            Err(LoadError::UnsupportedImport { name }) => assert_eq!(name, "env::*"),
            other => panic!("expected an unsupported import, got {other:?}"),
        }
        let wasi = wat(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                       (func (export "_start")))"#,
        );
        assert!(precheck(&wasi, &ModuleBounds::default()).is_ok());
    }

    #[test]
    fn garbage_after_a_header_is_malformed_not_a_panic() {
        for bytes in [
            b"\0asm\x01\0\0\0\x0a\xff\xff\xff\xff\x0f".to_vec(),
            b"\0asm\x0d\0\x01\0\x01\x05".to_vec(),
            b"\0asm\x01\0\0\0\x03\x05\xff\xff\xff\xff\x0f".to_vec(),
        ] {
            assert!(precheck(&bytes, &ModuleBounds::default()).is_err());
        }
        assert!(matches!(
            precheck(b"hello", &ModuleBounds::default()),
            Err(LoadError::NotWasm)
        ));
    }

    #[test]
    fn weight_counts_functions_beyond_their_bytes() {
        let few_big = ModuleShape {
            functions: 10,
            code_bytes: 100_000,
            ..ModuleShape::default()
        };
        let many_empty = ModuleShape {
            functions: 100_000,
            code_bytes: 400_000,
            ..ModuleShape::default()
        };
        assert!(many_empty.compile_weight() > 10 * few_big.compile_weight());
    }
}
