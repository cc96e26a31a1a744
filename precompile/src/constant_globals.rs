//! Folds the guest's constant globals into its code.
//!
//! componentize-py links CPython and its other libraries as position-independent shared
//! libraries: a library reaches its own data through the imported global `__memory_base`, and
//! other libraries' data and functions through imported `GOT.mem` / `GOT.func` globals. Each such
//! read costs compiled code two dependent loads (the global's address, then its value), and
//! CPython's interpreter makes tens of thousands of them (`_PyRuntime`, `Py_None`, type objects).
//!
//! Yet the values never change: the linker defines them as constants, and the snapshot taken
//! after the guest's initialisation holds the final ones. So every `global.get` of an imported
//! global that resolves to a constant-initialised global which no code that can run writes becomes
//! an `i32.const` of its value. The globals themselves stay, so the guest means the same.

use std::collections::{HashMap, HashSet};

use wasm_encoder::reencode::{self, Reencode, ReencodeComponent};
use wasm_encoder::{Component, Instruction, Module, ModuleSection};
use wasmparser::{ComponentAlias, ElementItems, ExternalKind, Instance, InstantiationArgKind, Operator, Parser, Payload, TypeRef};

/// The component with its constant globals folded, and how many reads were folded.
pub struct Folded {
    pub wasm: Vec<u8>,
    pub folds: usize,
}

pub fn fold(component: &[u8]) -> Result<Folded, String> {
    let constants = Survey::of(component).map_err(|err| err.to_string())?.constants();
    let mut folder = Folder { constants, next_module: 0, current: HashMap::new(), folds: 0 };
    let mut out = Component::new();
    folder.parse_component(&mut out, Parser::new(0), component).map_err(|err| err.to_string())?;
    Ok(Folded { wasm: out.finish(), folds: folder.folds })
}

/// What folding needs to know of one core module.
#[derive(Default)]
struct ModuleInfo {
    /// Its imported globals, in index order: (module, name).
    imports: Vec<(String, String)>,
    /// Its own globals: the value of each whose initialiser is an `i32.const`.
    defined: Vec<Option<i32>>,
    /// Its exported globals, by name.
    exports: HashMap<String, u32>,
    /// The globals its code writes, unless no code of it can ever run.
    written: Vec<u32>,
}

impl ModuleInfo {
    fn of(module: &[u8]) -> wasmparser::Result<ModuleInfo> {
        let mut info = ModuleInfo::default();
        // Its code runs only if something can call one of its own functions: its start function,
        // an export, or a table it puts them in. (The linker's initialiser, once snapshotted,
        // only puts other modules' functions in the table.)
        let mut can_run = false;
        let mut imported_functions = 0;
        for payload in Parser::new(0).parse_all(module) {
            match payload? {
                Payload::ImportSection(imports) => {
                    for import in imports.into_imports() {
                        let import = import?;
                        match import.ty {
                            TypeRef::Global(_) => {
                                info.imports.push((import.module.to_string(), import.name.to_string()))
                            }
                            TypeRef::Func(_) => imported_functions += 1,
                            _ => {}
                        }
                    }
                }
                Payload::GlobalSection(globals) => {
                    for global in globals {
                        let value = match global?.init_expr.get_operators_reader().read()? {
                            Operator::I32Const { value } => Some(value),
                            _ => None,
                        };
                        info.defined.push(value);
                    }
                }
                Payload::ExportSection(exports) => {
                    for export in exports {
                        let export = export?;
                        match export.kind {
                            ExternalKind::Global => {
                                info.exports.insert(export.name.to_string(), export.index);
                            }
                            ExternalKind::Func => can_run |= export.index >= imported_functions,
                            _ => {}
                        }
                    }
                }
                Payload::StartSection { .. } => can_run = true,
                Payload::ElementSection(elements) => {
                    for element in elements {
                        can_run |= match element?.items {
                            ElementItems::Functions(functions) => {
                                functions.into_iter().any(|f| f.map_or(true, |f| f >= imported_functions))
                            }
                            // Any expression could name one of its functions.
                            ElementItems::Expressions(..) => true,
                        };
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let mut operators = body.get_operators_reader()?;
                    while !operators.eof() {
                        if let Operator::GlobalSet { global_index } = operators.read()? {
                            info.written.push(global_index);
                        }
                    }
                }
                _ => {}
            }
        }
        if !can_run {
            info.written.clear();
        }
        Ok(info)
    }
}

/// A core instance of the component.
enum CoreInstance {
    Module { module: u32, args: HashMap<String, u32> },
    /// A bag of items, its globals by name: indices in the component's core global space.
    Exports(HashMap<String, u32>),
}

/// The component's core modules and how they are instantiated: enough to tell where each
/// imported global comes from.
struct Survey {
    modules: Vec<ModuleInfo>,
    instances: Vec<CoreInstance>,
    /// The component's core globals: exports of core instances, (instance, name).
    globals: Vec<(u32, String)>,
    /// Whether the component has something this survey does not follow (modules in nested
    /// components, or from aliases): then nothing is folded.
    unfollowed: bool,
}

/// A global as defined: (core instance, index among its module's own globals).
type Definition = (u32, u32);

impl Survey {
    fn of(component: &[u8]) -> wasmparser::Result<Survey> {
        let mut survey = Survey { modules: Vec::new(), instances: Vec::new(), globals: Vec::new(), unfollowed: false };
        // parse_all goes into nested modules and components too: only the outermost level counts.
        // What it is inside of, innermost last: whether each is a component.
        let mut inside: Vec<bool> = Vec::new();
        for payload in Parser::new(0).parse_all(component) {
            let payload = payload?;
            if !inside.is_empty() {
                match payload {
                    Payload::ModuleSection { .. } => {
                        // A module in a nested component would be reencoded among the outer ones.
                        survey.unfollowed |= inside.iter().any(|&component| component);
                        inside.push(false);
                    }
                    Payload::ComponentSection { .. } => inside.push(true),
                    Payload::End(_) => {
                        inside.pop();
                    }
                    _ => {}
                }
                continue;
            }
            match payload {
                Payload::ModuleSection { unchecked_range, .. } => {
                    survey.modules.push(ModuleInfo::of(&component[unchecked_range])?);
                    inside.push(false);
                }
                Payload::ComponentSection { .. } => inside.push(true),
                Payload::InstanceSection(instances) => {
                    for instance in instances {
                        survey.instances.push(match instance? {
                            Instance::Instantiate { module_index, args } => CoreInstance::Module {
                                module: module_index,
                                args: args
                                    .iter()
                                    .filter(|arg| arg.kind == InstantiationArgKind::Instance)
                                    .map(|arg| (arg.name.to_string(), arg.index))
                                    .collect(),
                            },
                            Instance::FromExports(exports) => CoreInstance::Exports(
                                exports
                                    .iter()
                                    .filter(|export| export.kind == ExternalKind::Global)
                                    .map(|export| (export.name.to_string(), export.index))
                                    .collect(),
                            ),
                        });
                    }
                }
                Payload::ComponentAliasSection(aliases) => {
                    for alias in aliases {
                        match alias? {
                            ComponentAlias::CoreInstanceExport { kind: ExternalKind::Global, instance_index, name } => {
                                survey.globals.push((instance_index, name.to_string()))
                            }
                            ComponentAlias::Outer { kind: wasmparser::ComponentOuterAliasKind::CoreModule, .. } => {
                                survey.unfollowed = true
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(survey)
    }

    /// Where global `index` of core instance `instance` is defined, if it can be told.
    fn global(&self, instance: u32, index: u32, depth: u32) -> Option<Definition> {
        let CoreInstance::Module { module, args } = self.instances.get(instance as usize)? else {
            return None;
        };
        let info = self.modules.get(*module as usize)?;
        match info.imports.get(index as usize) {
            Some((from, name)) => self.export(*args.get(from)?, name, depth + 1),
            None => Some((instance, index - info.imports.len() as u32)),
        }
    }

    /// Where the global that core instance `instance` exports as `name` is defined.
    fn export(&self, instance: u32, name: &str, depth: u32) -> Option<Definition> {
        // Deeper than any linking goes: a cycle, which a valid component cannot have.
        if depth > 16 {
            return None;
        }
        match self.instances.get(instance as usize)? {
            CoreInstance::Module { module, .. } => {
                let index = *self.modules.get(*module as usize)?.exports.get(name)?;
                self.global(instance, index, depth)
            }
            CoreInstance::Exports(globals) => {
                let (from, name) = self.globals.get(*globals.get(name)? as usize)?;
                self.export(*from, name, depth + 1)
            }
        }
    }

    fn value(&self, (instance, index): Definition) -> Option<i32> {
        let CoreInstance::Module { module, .. } = self.instances.get(instance as usize)? else {
            return None;
        };
        *self.modules.get(*module as usize)?.defined.get(index as usize)?
    }

    /// For each module (by index), the value of each imported global (by index) it may read as
    /// a constant.
    fn constants(&self) -> HashMap<u32, HashMap<u32, i32>> {
        let mut constants = HashMap::new();
        if self.unfollowed {
            return constants;
        }
        let mut written = HashSet::new();
        let mut instantiations: HashMap<u32, usize> = HashMap::new();
        for (instance, core) in (0..).zip(&self.instances) {
            if let CoreInstance::Module { module, .. } = core {
                *instantiations.entry(*module).or_default() += 1;
                for &index in &self.modules[*module as usize].written {
                    // A write whose global cannot be traced could be to any global.
                    match self.global(instance, index, 0) {
                        Some(definition) => written.insert(definition),
                        None => return HashMap::new(),
                    };
                }
            }
        }
        for (instance, core) in (0..).zip(&self.instances) {
            let CoreInstance::Module { module, .. } = core else { continue };
            // Different instances of one module may import different values.
            if instantiations[module] != 1 {
                continue;
            }
            let imports = self.modules[*module as usize].imports.len() as u32;
            let values: HashMap<u32, i32> = (0..imports)
                .filter_map(|index| {
                    let definition = self.global(instance, index, 0)?;
                    let value = self.value(definition).filter(|_| !written.contains(&definition))?;
                    Some((index, value))
                })
                .collect();
            constants.insert(*module, values);
        }
        constants
    }
}

struct Folder {
    constants: HashMap<u32, HashMap<u32, i32>>,
    next_module: u32,
    /// The constant imported globals of the module being rewritten.
    current: HashMap<u32, i32>,
    folds: usize,
}

impl Reencode for Folder {
    type Error = String;

    fn instruction<'a>(&mut self, operator: Operator<'a>) -> Result<Instruction<'a>, reencode::Error<String>> {
        if let Operator::GlobalGet { global_index } = operator {
            if let Some(&value) = self.current.get(&global_index) {
                self.folds += 1;
                return Ok(Instruction::I32Const(value));
            }
        }
        reencode::utils::instruction(self, operator)
    }
}

impl ReencodeComponent for Folder {
    fn parse_component_submodule(
        &mut self,
        component: &mut Component,
        parser: Parser,
        module: &[u8],
    ) -> Result<(), reencode::Error<String>> {
        self.current = self.constants.remove(&self.next_module).unwrap_or_default();
        self.next_module += 1;
        let mut rewritten = Module::new();
        self.parse_core_module(&mut rewritten, parser, module)?;
        component.section(&ModuleSection(&rewritten));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use wasm_encoder::{
        Alias, CodeSection, ComponentAliasSection, ConstExpr, EntityType, ExportKind, ExportSection, Function,
        FunctionSection, GlobalSection, GlobalType, ImportSection, InstanceSection, ModuleArg, TypeSection, ValType,
    };

    use super::*;

    const NAMES: [&str; 3] = ["fixed", "changed", "base"];

    /// A module defining three globals (42 and 7, mutable; 5, immutable) and a function that
    /// writes the second, exported only if `exported`.
    fn definitions(exported: bool) -> Module {
        let mut types = TypeSection::new();
        types.ty().function([], []);
        let mut functions = FunctionSection::new();
        functions.function(0);
        let mut globals = GlobalSection::new();
        for (value, mutable) in [(42, true), (7, true), (5, false)] {
            let ty = GlobalType { val_type: ValType::I32, mutable, shared: false };
            globals.global(ty, &ConstExpr::i32_const(value));
        }
        let mut exports = ExportSection::new();
        for (index, name) in (0..).zip(NAMES) {
            exports.export(name, ExportKind::Global, index);
        }
        if exported {
            exports.export("bump", ExportKind::Func, 0);
        }
        let mut code = CodeSection::new();
        let mut bump = Function::new([]);
        bump.instruction(&Instruction::I32Const(8)).instruction(&Instruction::GlobalSet(1)).instruction(&Instruction::End);
        code.function(&bump);
        let mut module = Module::new();
        module.section(&types).section(&functions).section(&globals).section(&exports).section(&code);
        module
    }

    /// A module importing the three globals and returning their sum.
    fn user() -> Module {
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]);
        let mut imports = ImportSection::new();
        for (name, mutable) in [("fixed", true), ("changed", true), ("base", false)] {
            let ty = GlobalType { val_type: ValType::I32, mutable, shared: false };
            imports.import("env", name, EntityType::Global(ty));
        }
        let mut functions = FunctionSection::new();
        functions.function(0);
        let mut exports = ExportSection::new();
        exports.export("sum", ExportKind::Func, 0);
        let mut code = CodeSection::new();
        let mut sum = Function::new([]);
        sum.instruction(&Instruction::GlobalGet(0))
            .instruction(&Instruction::GlobalGet(1))
            .instruction(&Instruction::I32Add)
            .instruction(&Instruction::GlobalGet(2))
            .instruction(&Instruction::I32Add)
            .instruction(&Instruction::End);
        code.function(&sum);
        let mut module = Module::new();
        module.section(&types).section(&imports).section(&functions).section(&exports).section(&code);
        module
    }

    /// The user instantiated against the definitions, as componentize-py's linker does it: the
    /// globals aliased out of one instance and bundled into another.
    fn component(exported: bool) -> Vec<u8> {
        let mut component = Component::new();
        component.section(&ModuleSection(&definitions(exported)));
        component.section(&ModuleSection(&user()));
        let mut instances = InstanceSection::new();
        instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
        component.section(&instances);
        let mut aliases = ComponentAliasSection::new();
        for name in NAMES {
            aliases.alias(Alias::CoreInstanceExport { instance: 0, kind: ExportKind::Global, name });
        }
        component.section(&aliases);
        let mut instances = InstanceSection::new();
        instances.export_items(NAMES.iter().enumerate().map(|(index, &name)| (name, ExportKind::Global, index as u32)));
        instances.instantiate(1, [("env", ModuleArg::Instance(1))]);
        component.section(&instances);
        component.finish()
    }

    /// The operators of the last function of the component's last module.
    fn last_function(component: &[u8]) -> Vec<String> {
        let mut operators = Vec::new();
        for payload in Parser::new(0).parse_all(component) {
            if let Payload::CodeSectionEntry(body) = payload.unwrap() {
                let mut reader = body.get_operators_reader().unwrap();
                operators.clear();
                while !reader.eof() {
                    operators.push(format!("{:?}", reader.read().unwrap()));
                }
            }
        }
        operators
    }

    #[test]
    fn folds_globals_that_nothing_can_write() {
        let folded = fold(&component(false)).unwrap();
        wasmparser::Validator::new().validate_all(&folded.wasm).unwrap();
        assert_eq!(folded.folds, 3);
        let sum = last_function(&folded.wasm);
        assert_eq!(&sum[..4], ["I32Const { value: 42 }", "I32Const { value: 7 }", "I32Add", "I32Const { value: 5 }"]);
    }

    #[test]
    fn keeps_a_global_that_exported_code_writes() {
        let folded = fold(&component(true)).unwrap();
        wasmparser::Validator::new().validate_all(&folded.wasm).unwrap();
        assert_eq!(folded.folds, 2);
        let sum = last_function(&folded.wasm);
        assert_eq!(&sum[..4], ["I32Const { value: 42 }", "GlobalGet { global_index: 1 }", "I32Add", "I32Const { value: 5 }"]);
    }
}
