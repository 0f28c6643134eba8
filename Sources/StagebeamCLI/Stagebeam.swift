import ArgumentParser

@main
struct Stagebeam: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stagebeam",
        abstract: "Stage-level beam search for vision-language models on CPU clusters.",
        subcommands: [
            RunCommand.self, GenerateCommand.self, EvalCommand.self, TokenizeCommand.self, BenchCommand.self, BenchKernelsCommand.self,
            BenchSearchCommand.self,
            BenchRouterCommand.self, KeygenCommand.self, ModelIDCommand.self, CoordinatorCommand.self, WorkerCommand.self,
            SubmitCommand.self, StatusCommand.self, BatchCommand.self, LoadtestCommand.self, ProbeCommand.self, GatewayCommand.self,
            SimulateWorkersCommand.self
        ]
    )
}
