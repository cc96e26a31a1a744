//! Makes the guest stoppable: every function entry and loop head of every core module in the
//! component reads the word at `plpywasm_engine::STOP_FLAG` and traps if it is not zero.
//!
//! Between them these checks cover any code that runs long: a loop, or recursion. The host sets
//! the word from its ticker thread when PostgreSQL asks the backend to cancel or to end.

use wasm_encoder::reencode::{self, Reencode, ReencodeComponent};
use wasm_encoder::{BlockType, CodeSection, Component, Function, Instruction, MemArg, Module, ModuleSection};
use wasmparser::{DataKind, FunctionBody, Operator, Parser, Payload, TypeRef};

/// The component with its checks, and how many it has.
pub struct Checked {
    pub wasm: Vec<u8>,
    pub checks: usize,
}

pub fn add(component: &[u8], flag: u32) -> Result<Checked, String> {
    let mut adder = Adder { flag, has_memory: false, memories: 0, checks: 0 };
    let mut out = Component::new();
    adder.parse_component(&mut out, Parser::new(0), component).map_err(|err| err.to_string())?;
    if adder.memories != 1 {
        return Err(format!("the guest defines {} linear memories; one was expected", adder.memories));
    }
    Ok(Checked { wasm: out.finish(), checks: adder.checks })
}

struct Adder {
    flag: u32,
    /// The module being rewritten has a memory 0: the guest's linear memory, which every module
    /// that has a memory shares.
    has_memory: bool,
    /// Memories defined by the modules seen so far.
    memories: usize,
    checks: usize,
}

impl Adder {
    /// Reads what the checks rely on before a module is rewritten: whether it has the memory,
    /// and that the memory it defines places no data on the flag.
    fn survey(&mut self, module: &[u8]) -> Result<(), String> {
        self.has_memory = false;
        for payload in Parser::new(0).parse_all(module) {
            match payload.map_err(|err| err.to_string())? {
                Payload::ImportSection(imports) => {
                    for import in imports.into_imports() {
                        if matches!(import.map_err(|err| err.to_string())?.ty, TypeRef::Memory(_)) {
                            self.has_memory = true;
                        }
                    }
                }
                Payload::MemorySection(memories) if memories.count() > 0 => {
                    self.has_memory = true;
                    self.memories += memories.count() as usize;
                }
                Payload::DataSection(data) => {
                    for segment in data {
                        let segment = segment.map_err(|err| err.to_string())?;
                        let DataKind::Active { offset_expr, .. } = segment.kind else { continue };
                        let start = match offset_expr.get_operators_reader().read() {
                            Ok(Operator::I32Const { value }) => value as u32 as u64,
                            _ => continue,
                        };
                        let flag = u64::from(self.flag);
                        if start < flag + 4 && flag < start + segment.data.len() as u64 {
                            return Err(format!("the guest places data at the stop flag's address {flag}"));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check(&mut self, function: &mut Function) {
        let load = MemArg { offset: u64::from(self.flag), align: 2, memory_index: 0 };
        function
            .instruction(&Instruction::I32Const(0))
            .instruction(&Instruction::I32Load(load))
            .instruction(&Instruction::If(BlockType::Empty))
            .instruction(&Instruction::Unreachable)
            .instruction(&Instruction::End);
        self.checks += 1;
    }
}

impl Reencode for Adder {
    type Error = String;

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        body: FunctionBody<'_>,
    ) -> Result<(), reencode::Error<String>> {
        let mut function = self.new_function_with_parsed_locals(&body)?;
        if self.has_memory {
            self.check(&mut function);
        }
        let mut operators = body.get_operators_reader()?;
        while !operators.eof() {
            let operator = operators.read()?;
            let is_loop = matches!(operator, Operator::Loop { .. });
            function.instruction(&self.instruction(operator)?);
            if is_loop {
                if !self.has_memory {
                    // A loop with no memory to check could run forever: the guest is not one we know.
                    return Err(reencode::Error::UserError("a guest module without memory has a loop".into()));
                }
                self.check(&mut function);
            }
        }
        code.function(&function);
        Ok(())
    }
}

impl ReencodeComponent for Adder {
    fn parse_component_submodule(
        &mut self,
        component: &mut Component,
        parser: Parser,
        module: &[u8],
    ) -> Result<(), reencode::Error<String>> {
        self.survey(module).map_err(reencode::Error::UserError)?;
        let mut rewritten = Module::new();
        self.parse_core_module(&mut rewritten, parser, module)?;
        component.section(&ModuleSection(&rewritten));
        Ok(())
    }
}
