import ArgumentParser
@main struct MMKD: ParsableCommand {}
