# fish completion for rx: generated from the argparse definitions by `python -m rx.client.completion` (make docs): do not edit

function __rx_complete_names --description 'names from rx --complete, with the line\'s -c DIR'
    set -l words (commandline -opc)
    set -l cfg
    for i in (seq (count $words))
        switch $words[$i]
            case -c --config-dir
                set cfg -c $words[(math $i + 1)]
            case '--config-dir=*'
                set cfg -c (string replace -- --config-dir= '' $words[$i])
        end
    end
    set -l kind $argv[1]
    if test $kind = minions; and begin; contains -- -N $words; or contains -- --nodegroup $words; end
        set kind nodegroups
    end
    rx --complete $kind $cfg 2>/dev/null
end

function _rx_position --description 'the number of positional words before the cursor'
    set -l valued -c --config-dir --delimiter -t --timeout --gather-job-timeout --max-wait --job-expire -b --batch --batch-size --batch-wait --subset --out --output --out-file --output-file --out-indent --output-indent --args-separator -l --log-level -a --auth --eauth --external-auth --username
    set -l words (commandline -opc)
    set -l n 0
    set -l skip 0
    for w in $words[2..-1]
        if test $skip = 1
            set skip 0
        else if contains -- $w $valued
            set skip 1
        else if not string match -q -- '-*' $w
            set n (math $n + 1)
        end
    end
    test $n = $argv[1]
end

complete -c rx -f
complete -c rx -s h -l help -d 'show this help message and exit'
complete -c rx -s c -l config-dir -x -a '(__fish_complete_directories)' -d 'config directory'
complete -c rx -s E -l pcre -d 'regular expression on the id'
complete -c rx -s L -l list -d 'comma- or space-separated list of ids'
complete -c rx -s G -l grain -d 'grain glob: key:value, nested keys as a:b:c'
complete -c rx -s P -l grain-pcre -d 'grain regular expression: key:regex'
complete -c rx -s S -l ipcidr -d 'IP address or CIDR against the ipv4/ipv6 grains'
complete -c rx -s I -l pillar -d 'pillar glob: key:value on the master\'s compiled pillars'
complete -c rx -s J -l pillar-pcre -d 'pillar regular expression: key:regex'
complete -c rx -s N -l nodegroup -d 'nodegroup from the master config'
complete -c rx -s C -l compound -d 'compound: G@ P@ I@ J@ L@ E@ S@ N@ with and/or/not/()'
complete -c rx -l delimiter -x -d 'separator of nested grain and pillar keys'
complete -c rx -l private -d 'seal the job for each targeted minion alone, so no other minion can read its arg'
complete -c rx -l preview-target -d 'print the minions the target matches, send nothing'
complete -c rx -s t -l timeout -x -d 'seconds without a new return before asking missing minions whether the job still'
complete -c rx -l gather-job-timeout -x -d 'seconds to wait for that find_job probe\'s answers, after the latest one'
complete -c rx -l max-wait -x -d 'wait at most this long in all, however long minions say the job still runs'
complete -c rx -l job-expire -x -d 'minions refuse the job once this many seconds have passed since it was published'
complete -c rx -l async -d 'publish and print the jid, do not wait'
complete -c rx -s b -l batch -l batch-size -x -d 'rolling batches: at most N'
complete -c rx -l batch-wait -x -d 'seconds to wait after a minion returns before starting the next one'
complete -c rx -l failhard -d 'with --batch: start no more minions after a failure'
complete -c rx -l subset -x -d 'run on N minions picked at random from the target'
complete -c rx -l out -l output -x -a 'nested json jsonl yaml txt raw' -d 'output format'
complete -c rx -s s -l static -d 'print everything at the end, as one document'
complete -c rx -l out-file -l output-file -r -F -d 'write the output to this file instead of stdout'
complete -c rx -l out-file-append -l output-file-append -d 'with --out-file: append to the file instead of replacing it'
complete -c rx -l out-indent -l output-indent -x -d 'indent of json and yaml output'
complete -c rx -l no-color -l no-colour -d 'never colour the output'
complete -c rx -l force-color -l force-colour -d 'colour the output even when not on a terminal'
complete -c rx -s p -l progress -d 'draw a bar of returned/expected minions on stderr while waiting'
complete -c rx -l show-jid -d 'print \'jid: JID\' first'
complete -c rx -l hide-timeout -d 'leave minions that did not return out of the output'
complete -c rx -l allow-control-chars -d 'print control characters in minion data as they are'
complete -c rx -s v -l verbose -d 'print the jid, missing minions and a summary on stderr'
complete -c rx -l summary -d 'print a summary on stderr'
complete -c rx -l no-parse -x -d 'keyword arguments'
complete -c rx -l args-stdin -d 'read more arguments from stdin, one per line'
complete -c rx -l args-separator -x -d 'separates the argument groups of a multi-function job'
complete -c rx -s d -l doc -l documentation -d 'show the documentation of FUN'
complete -c rx -s V -l versions-report -d 'print the versions of rx and its dependencies'
complete -c rx -s l -l log-level -x -a 'all garbage trace debug profile info warning error critical quiet' -d 'log level on stderr: all, garbage, trace, debug, profile, info, warning, error, '
complete -c rx -l version -d 'show program\'s version number and exit'
complete -c rx -s a -l auth -l eauth -l external-auth -x -d 'log in through this external_auth back end'
complete -c rx -s T -l make-token -d 'with -a: keep the token in ~/.rx_token for later commands'
complete -c rx -l username -x -d 'with -a: the user to log in as'
complete -c rx -n '_rx_position 0' -a '(__rx_complete_names minions)' -d 'target expression'
complete -c rx -n '_rx_position 1' -a '(__rx_complete_names functions)' -d 'function(s) to run: module.function, or several joined with commas'
