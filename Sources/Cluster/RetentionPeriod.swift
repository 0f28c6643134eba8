/// A period such as `7d`, `12h`, `30m`, `45s` or a combination (`1d12h`), as `--journal-retain`
/// takes it.
public enum RetentionPeriod {
    /// The period `text` names, or nil when it is not a positive number of days, hours, minutes and
    /// seconds.
    public static func parse(_ text: String) -> Duration? {
        let units: [Character: Int64] = ["d": 86_400, "h": 3_600, "m": 60, "s": 1]
        var seconds: Int64 = 0
        var digits = ""
        for character in text {
            if character.isASCII && character.isNumber {
                digits.append(character)
            } else if let unit = units[character], let value = Int64(digits) {
                let (product, overflow) = value.multipliedReportingOverflow(by: unit)
                guard !overflow else { return nil }
                seconds += product
                digits = ""
            } else {
                return nil
            }
        }
        guard digits.isEmpty, seconds > 0 else { return nil }
        return .seconds(seconds)
    }
}
