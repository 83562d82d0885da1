/// Options that take two values (`--bind SRC DEST`), which ArgumentParser has no notion of.
///
/// Before parsing, each such option's two values are joined with a NUL — a byte no argument can
/// contain — into one, and split again afterwards. Everything after `--` is left alone.
enum PairedOptions {
    static let names: Set<String> = ["--bind", "--ro-bind", "--dev-bind", "--bind-data", "--setenv"]
    static let separator: Character = "\0"

    /// `arguments` (without argv[0]) with each paired option's two values joined.
    static func join(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                result += arguments[index...]
                break
            }
            if names.contains(argument), index + 2 < arguments.count,
               arguments[index + 1] != "--", arguments[index + 2] != "--" {
                result += [argument, arguments[index + 1] + String(separator) + arguments[index + 2]]
                index += 3
                continue
            }
            result.append(argument)
            index += 1
        }
        return result
    }

    /// Splits a joined value; `nil` when the option was not followed by two values.
    static func split(_ value: String) -> (String, String)? {
        guard let cut = value.firstIndex(of: separator) else { return nil }
        return (String(value[..<cut]), String(value[value.index(after: cut)...]))
    }
}
