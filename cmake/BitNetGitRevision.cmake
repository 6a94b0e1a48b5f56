# bitnet_git_revision(<var>): sets <var> to the short git revision of the
# source tree as configured, or "unknown" for a tree that is not a git
# checkout. Used by the compiler's and the runtime tools' --version.
set(BITNET_SOURCE_ROOT "${CMAKE_CURRENT_LIST_DIR}/..")

function(bitnet_git_revision out)
  execute_process(
    COMMAND git rev-parse --short=12 HEAD
    WORKING_DIRECTORY ${BITNET_SOURCE_ROOT}
    OUTPUT_VARIABLE revision
    OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET
    RESULT_VARIABLE result)
  if(NOT result EQUAL 0 OR NOT revision)
    set(revision unknown)
  endif()
  set(${out} ${revision} PARENT_SCOPE)
endfunction()
